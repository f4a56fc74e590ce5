import LancetIO
import LancetIR

/// What the output format can hold, checked before any compute: a Hugging Face folder (any output that does
/// not end in `.gguf`) gives every block the same sizes and both sub-layers, so a recipe whose input model
/// already breaks that, or whose passes may leave blocks that differ (`SurgeryPass.blockShapeVariation`), is
/// refused here rather than after the sweep, when the exporter would refuse it.
extension RecipeValidator {
    /// The problems of writing the recipe's result to its output; needs the model.
    static func checkExport(_ recipe: Recipe, registry: PassRegistry, model: Model?) -> [RecipeError] {
        guard let output = recipe.output, ModelOutputFormat(path: output) == .huggingFace, let model else { return [] }
        let at = recipe.location(of: "output")
        let advice = "a Hugging Face folder gives every block the same sizes and both sub-layers; write a .gguf file (deci) instead"
        var errors: [RecipeError] = []
        var shapesKept = true
        for stage in recipe.stages {
            for invocation in stage.passes {
                guard let pass = try? registry.instantiate(invocation) else { continue }
                guard let why = pass.blockShapeVariation(model: model, targets: invocation.selection) else { continue }
                shapesKept = false
                errors.append(RecipeError(at, path: "output", "\(invocation.path) (\(invocation.name)) may leave blocks of different sizes: \(why); \(advice)"))
            }
        }
        if shapesKept {
            do { try HuggingFaceExporter.checkExpressible(model, folder: output) } catch let e as ModelExportError {
                errors.append(RecipeError(at, path: "output", "the input model cannot be written as a Hugging Face folder: "
                                          + (e.block.map { "block \($0): " } ?? "") + e.reason))
            } catch {
                errors.append(RecipeError(at, path: "output", "the input model cannot be written as a Hugging Face folder: \(error)"))
            }
        }
        return errors
    }
}
