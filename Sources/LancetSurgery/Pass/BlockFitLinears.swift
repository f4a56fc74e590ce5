/// Which linears a model pass's least-squares block fit (`ModelPassContext.fitBlocks` with `fit: lstsq`) refits.
public enum BlockFitLinears: String, Sendable, CaseIterable {
    /// The linears that write the block's output, as a span fit does (`SpanFit`): the output writer (`mlp.down`),
    /// then the linear writing into its residual (`attn.o`) in rounds of block coordinate descent.
    case output
    /// Every linear that has a twin in the original block at the same index, round by round along the dataflow on
    /// its kept weights against its twin's output: the fit a block pass's `lstsq` gets in the pipeline.
    case every
}
