import ArgumentParser
import Foundation
import ParleyChat
import ParleyClient

/// `parley-bench chat-render`: drawing one frame of `parley chat` beside long messages
/// (attacker finding F5). "cold" is a frame on a fresh screen, which wraps every entry it
/// shows, as every frame did before the wrapped lines were cached; "warm" is the next
/// frame at the same width (a key typed), and "resize" the first frame at a new width.
struct ChatRenderBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-render",
        abstract: "Time drawing chat frames beside long messages (cold, warm and after a resize)."
    )

    @Option(help: "Messages in the history.") var messages = 200
    @Option(help: "Bytes per message (64 KiB is the largest a client sends).") var bytes = 65536
    @Option(help: "Frames per row (median and p90 are reported).") var frames = 50
    @Option(help: "Terminal rows and columns, e.g. 50x160.") var size = "50x160"

    func run() throws {
        let parts = size.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 > 0 }) else { throw ValidationError("--size is ROWSxCOLUMNS") }
        let (rows, columns) = (parts[0], parts[1])
        // Words with a double-width character now and then: the wrap measures every one.
        let words = String(repeating: "lorem ipsum 漢字 dolor ", count: max(1, bytes / 25 + 1))
        let text = String(decoding: Array(words.utf8.prefix(max(1, bytes))), as: UTF8.self)
        let history = (0..<messages).map {
            HistoryEntry(seq: UInt64($0 + 1), time: 0, sender: "alice", kind: .text, text: text)
        }
        let fresh = { () -> ChatScreen in
            var screen = ChatScreen(username: "bob", group: "g")
            screen.history = history
            return screen
        }
        report(
            "cold",
            (0..<frames).map { _ in
                let screen = fresh()
                return milliseconds { _ = screen.layout(rows: rows, columns: columns) }
            }
        )
        var screen = fresh()
        _ = screen.layout(rows: rows, columns: columns)
        report(
            "warm",
            (0..<frames).map { index in
                screen.editor.insert(index % 2 == 0 ? "a" : "b")
                return milliseconds { _ = screen.layout(rows: rows, columns: columns) }
            }
        )
        report(
            "resize",
            (0..<frames).map { index in
                let width = columns - 1 - index % 2
                return milliseconds { _ = screen.layout(rows: rows, columns: width) }
            }
        )
    }

    func report(_ name: String, _ samples: [Double]) {
        let sorted = samples.sorted()
        let p90 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.9).rounded(.up)) - 1)]
        print(
            String(
                format: "chat_frame_%-8@ messages=%d bytes=%d  median %10.3f ms   p90 %10.3f ms   (%d frames)",
                name as NSString,
                messages,
                bytes,
                sorted[sorted.count / 2],
                p90,
                samples.count
            )
        )
    }

    func milliseconds(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
    }
}
