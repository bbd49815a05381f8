import Foundation
import ParleyProtocol
import Testing

@testable import ParleyClient

/// The client's inbox hands frames over by waking a waiter, not by polling (issue 15): in
/// order, at once, and a wait ends on its deadline, on close and on cancellation.
@Suite struct FrameInboxWaitTests {
    private static func frame(_ seq: UInt64) -> ServerFrame {
        .message(.init(group: "g", seq: seq, time: 0, sender: "x", message: Data([1])))
    }

    /// Takes `count` frames, waiting for each as `ServerSocket.next` does.
    private static func takeAll(_ count: Int, from inbox: FrameInbox) async throws -> [ServerFrame] {
        var taken: [ServerFrame] = []
        while taken.count < count {
            if let frame = try inbox.take() {
                taken.append(frame)
            } else {
                await inbox.wait(for: .frame, until: .now + .seconds(30))
            }
        }
        return taken
    }

    @Test func aWaitingReaderGetsEveryFrameInOrderThroughASmallInbox() async throws {
        let inbox = FrameInbox(maxFrames: 3, maxBytes: 1 << 20)
        let reader = Task { try await Self.takeAll(500, from: inbox) }
        for seq in 1...500 { try await inbox.put(Self.frame(UInt64(seq)), size: 10) }
        let taken = try await reader.value
        #expect(taken == (1...500).map { Self.frame(UInt64($0)) })
        #expect(inbox.peakCount <= 3)
    }

    @Test func aWaitEndsAtItsDeadlineWithoutAFrame() async throws {
        let inbox = FrameInbox(maxFrames: 3, maxBytes: 1 << 20)
        let start = ContinuousClock.now
        await inbox.wait(for: .frame, until: start + .milliseconds(100))
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        #expect(try inbox.take() == nil)
        // A deadline already past returns at once.
        await inbox.wait(for: .frame, until: start)
    }

    @Test func aFrameWakesAWaiterLongBeforeItsDeadline() async throws {
        let inbox = FrameInbox(maxFrames: 3, maxBytes: 1 << 20)
        let start = ContinuousClock.now
        // The deadline is far beyond anything a loaded test machine adds (the whole suite shares
        // two cooperative threads with CPU-heavy tests): only the frame can end the wait in time.
        let waiter = Task { await inbox.wait(for: .frame, until: start + .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        #expect(inbox.offer(Self.frame(1), size: 10))
        await waiter.value
        #expect(ContinuousClock.now - start < .seconds(600))
        #expect(try inbox.take() == Self.frame(1))
    }

    @Test func closingWakesTheReaderAndCancellingEndsAWaitingWriter() async throws {
        let inbox = FrameInbox(maxFrames: 1, maxBytes: 1 << 20)
        let reader = Task { try await Self.takeAll(2, from: inbox) }
        #expect(inbox.offer(Self.frame(1), size: 10))
        // The inbox is full, and stays so once the reader took frame 1 only if nobody reads:
        // a writer waiting for room ends with CancellationError when its task is cancelled.
        let stuck = FrameInbox(maxFrames: 1, maxBytes: 1 << 20)
        #expect(stuck.offer(Self.frame(1), size: 10))
        let writer = Task { try await stuck.put(Self.frame(2), size: 10) }
        try await Task.sleep(for: .milliseconds(50))
        writer.cancel()
        await #expect(throws: CancellationError.self) { try await writer.value }
        #expect(stuck.count == 1)
        inbox.close(error: .unreachable("closed by the test"))
        await #expect(throws: ClientError.unreachable("closed by the test")) { try await reader.value }
    }
}
