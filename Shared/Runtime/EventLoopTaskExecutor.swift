import NIOCore
import NIOPosix

/// Runs the jobs of the tasks that prefer it on NIO's event loops, on the very loop that enqueues a job when there
/// is one. A gRPC server's connections, streams and handlers run under it (`GRPCServerService`): a request read on a
/// connection's loop is handled on that thread, and the handler's response written there, with no hand-off to
/// Swift's global executor and back for each step. That hand-off (two thread wake-ups) was about a quarter of a
/// call's CPU at a few hundred calls a second (docs/performance.md).
///
/// Handlers must not block, as on the global executor: blocking work already runs on thread pools of its own
/// (libmongoc's calls, bcrypt).
final class EventLoopTaskExecutor: TaskExecutor {
    private let group: MultiThreadedEventLoopGroup
    private let loops: [ObjectIdentifier]

    init(_ group: MultiThreadedEventLoopGroup) {
        self.group = group
        loops = group.makeIterator().map { ObjectIdentifier($0) }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        // A job enqueued from a pool thread (a MongoDB operation resuming its caller), or from a loop of another
        // group, goes to the next of ours; the write it makes then crosses to its connection's loop.
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let loop = current.flatMap { loops.contains(ObjectIdentifier($0)) ? $0 : nil } ?? group.next()
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
