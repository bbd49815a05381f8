import Foundation
import ProcessSupport
import Testing

@testable import ParleyClient

/// Drives `parley chat` in a real pseudo-terminal (tmux) against a real server.
@Suite(.serialized) struct ChatTerminalTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Runs tmux on a private socket and returns what it printed. Uses
    /// posix_spawn and waitpid: the tmux server it may start must not inherit
    /// a pipe we read, and Foundation's Process misses this child's exit here.
    @discardableResult
    static func tmux(_ socket: String, _ arguments: [String], capture: Bool = false) throws -> String {
        let argv = ["-L", socket] + arguments
        guard capture else {
            try ChildProcess.spawn("tmux", argv, output: .discard, errors: .discard).waitBlocking()
            return ""
        }
        let outputPath = NSTemporaryDirectory() + "tmux-out-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        try ChildProcess.spawn("tmux", argv, output: .file(outputPath, append: false), errors: .discard).waitBlocking()
        return (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// Polls the pane until `condition` holds or `seconds` pass; returns the last capture.
    static func waitForScreen(
        _ socket: String,
        seconds: Double = 15,
        until condition: (String) -> Bool
    ) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        var screen = ""
        while Date() < deadline {
            screen = try tmux(socket, ["capture-pane", "-t", "chat", "-p"], capture: true)
            if condition(screen) { return screen }
            try await Task.sleep(for: .milliseconds(200))
        }
        return screen
    }

    /// Whether `text` from bob reaches alice's history within ten seconds.
    static func aliceReceives(_ text: String, _ alice: ParleyClient) async throws -> Bool {
        for _ in 0..<50 {
            try await alice.sync()
            if try await alice.history("group1").contains(where: { $0.text == text && $0.sender == "bob" }) {
                return true
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    @Test func anArrivingMessageLeavesTheHalfTypedLineIntact() async throws {
        let binary = Self.repository.appendingPathComponent(".build/debug/parley").path
        try #require(
            FileManager.default.isExecutableFile(atPath: binary),
            "build the executable first (`swift build`); the chat test runs \(binary)"
        )
        let hasTmux = (try? Self.tmux("probe", ["-V"], capture: true))?.hasPrefix("tmux") ?? false
        try #require(
            hasTmux,
            "tmux is needed to drive the chat in a pseudo-terminal (apt-get install tmux; .ci/run installs it)"
        )

        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        try await alice.createGroup("group1")
        try await alice.add(["bob"], to: "group1")
        try await bob.sync()
        await bob.close()

        let socket = "parley-test-\(UUID().uuidString.prefix(8))"
        let command = "PARLEY_PASSWORD='password of bob' \(binary) chat group1 --home \(harness.root)/bob"
        try Self.tmux(socket, ["new-session", "-d", "-s", "chat", "-x", "80", "-y", "24", command])
        defer { _ = try? Self.tmux(socket, ["kill-server"]) }

        let ready = try await Self.waitForScreen(socket) {
            $0.contains("connected") && $0.contains("You joined group1")
        }
        #expect(ready.contains("Parley · bob · group1 · 2 members"))

        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", "half typed"])
        _ = try await alice.send("hello from alice", to: "group1")
        let screen = try await Self.waitForScreen(socket) { $0.contains("[alice] hello from alice") }
        let lines = screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(screen.contains("[alice] hello from alice"))
        #expect(
            lines.contains { $0.trimmingCharacters(in: .whitespaces) == "> half typed" },
            "the input line changed:\n\(screen)"
        )

        // Finishing the line sends it; alice receives it.
        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", " and finished"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Enter"])
        #expect(try await Self.aliceReceives("half typed and finished", alice))

        // Line editing: Home, Ctrl+E and Ctrl+W work in the middle of a line.
        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", "world"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Home"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", "hello "])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "C-e"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", " typo"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "C-w", "BSpace"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", "!"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Enter"])
        #expect(try await Self.aliceReceives("hello world!", alice))

        // A bracketed paste (tmux sends its line break as CR) stays on the input line until Enter.
        try Self.tmux(socket, ["set-buffer", "-b", "clip", "pasted one\npasted two"])
        try Self.tmux(socket, ["paste-buffer", "-p", "-b", "clip", "-t", "chat"])
        let pasted = try await Self.waitForScreen(socket) { $0.contains("> pasted one⏎pasted two") }
        #expect(pasted.contains("> pasted one⏎pasted two"), "the paste was not held:\n\(pasted)")
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Enter"])
        #expect(try await Self.aliceReceives("pasted one\npasted two", alice))

        // /help lists the keys.
        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", "/help"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Enter"])
        let help = try await Self.waitForScreen(socket) { $0.contains("/add USER...") }
        #expect(help.contains("/add USER..."))
        try Self.tmux(socket, ["send-keys", "-t", "chat", "NPage"])
        let keys = try await Self.waitForScreen(socket) { $0.contains("Ctrl+W") }
        #expect(keys.contains("Ctrl+W") && keys.contains("Alt+B"))
        // Esc closes it; a key typed at once after Esc would read as Alt+key, so wait for the screen.
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Escape"])
        let closed = try await Self.waitForScreen(socket) { !$0.contains("Ctrl+W") }
        #expect(closed.contains("hello world!"))

        // A non-admin command is refused with a plain sentence.
        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", "/remove alice"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Enter"])
        let refused = try await Self.waitForScreen(socket) { $0.contains("Only a group admin may do that") }
        #expect(refused.contains("Only a group admin may do that"))

        try Self.tmux(socket, ["send-keys", "-t", "chat", "-l", "/quit"])
        try Self.tmux(socket, ["send-keys", "-t", "chat", "Enter"])
        await alice.close()
        await harness.stop()
    }
}
