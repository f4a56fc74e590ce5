import LancetIR
import LancetTensor

extension PruneStructuredPass {
    /// The prune family's use of the IR's `BlockSlicing`: a plan's heads and channels cut out of a Llama block.
    enum Slicing {
        /// The linears of the attention sub-layer.
        static let attentionLinears = BlockSchema.attentionLinears
        /// The linears of the MLP sub-layer.
        static let mlpLinears = BlockSchema.mlpLinears

        /// Throws unless `block` can be sliced (`BlockSlicing.check`), naming the block.
        static func checkRebuildable(_ block: Block, index: Int) throws {
            do { try BlockSlicing.check(block) } catch let e as BlockShapeError {
                throw StructuredPruneError(block: index, "prune-structured: \(e.reason)")
            }
        }

        /// The cut and rebuilt block.
        static func apply(_ plan: Plan, to block: Block) throws -> Block {
            try BlockSlicing.slice(block, BlockSlicing.Plan(removeAttention: plan.removeAttention, removeMLP: plan.removeMLP, keptHeads: plan.keptHeads,
                                                             keptKVHeads: plan.keptKVHeads, keptChannels: plan.keptChannels))
        }

        /// Rows and columns (all when nil) of a matrix or vector, in the given orders.
        static func gather(_ t: Tensor, rows: [Int]? = nil, columns: [Int]? = nil) -> Tensor { BlockSlicing.gather(t, rows: rows, columns: columns) }
    }
}
