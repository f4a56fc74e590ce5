// An example of Lancet as a library: load a model, run a pipeline with calibration, save the result.
//
//     swift run -c release lancet-example-script models/SmolLM2-135M-Instruct.Q4_1.gguf out/scripted.gguf \
//         ../shared/data/c4/c4-train.00000-of-01024.first1041docs.text-only.json.gz
import Foundation
import Lancet

let arguments = CommandLine.arguments
guard arguments.count == 4 else {
    FileHandle.standardError.write(Data("usage: lancet-example-script MODEL OUTPUT CALIBRATION\n".utf8))
    exit(64)
}
do {
    var model = try Model.load(arguments[1])
    let passes = try PipelineText.parse("magnitude(sparsity=0.5, fit=lstsq)")
    let recipe = Recipe(stages: [Stage(name: "script", passes: passes)], text: "magnitude(sparsity=0.5, fit=lstsq)")
    let calibration = try CalibrationSet(corpus: try TextCorpus(path: arguments[3]), tokenizer: model.tokenizer!, samples: 8, length: 2048, seed: 0)
    var options = RunOptions()
    options.progress = { done, total, _ in print("block \(done)/\(total)") }
    let report = try Pipeline(recipe: recipe, registry: try BuiltinPasses.registry()).run(on: &model, calibration: calibration, options: options)
    for r in report.passes { print("block \(r.block ?? -1): error after fit \(r.errorAfterFit ?? 0)") }
    try model.save(to: arguments[2], overwrite: true)
    print("wrote \(arguments[2])")
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
