import Dispatch

/// How the ggml converters split a run of independent blocks over the cores: on the calling thread below a
/// size, else in tasks of about `elementsPerTask` elements (whole blocks), whose results do not depend on the split.
enum BlockTasks {
    /// Calls `body(first, count)` for consecutive ranges covering `blocks` blocks of `blockSize` elements.
    static func run(blocks: Int, blockSize: Int, serialBelow threshold: Int, elementsPerTask: Int, _ body: (_ first: Int, _ count: Int) -> Void) {
        guard blocks * blockSize >= threshold else { return body(0, blocks) }
        let blocksPerTask = max(1, elementsPerTask / blockSize)
        DispatchQueue.concurrentPerform(iterations: (blocks + blocksPerTask - 1) / blocksPerTask) { t in
            let first = t * blocksPerTask
            body(first, min(blocksPerTask, blocks - first))
        }
    }
}
