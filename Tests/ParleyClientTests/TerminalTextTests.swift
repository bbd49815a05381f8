import Foundation
import ProcessSupport
import Testing

@testable import ParleyClient

/// Finding 9: everything printed to a terminal goes through one sanitizer.
@Suite struct TerminalTextTests {
    @Test func controlsBidiAndEscapeSequencesAreShownInert() {
        let hostile = "a\u{1b}]0;pwn\u{07}b\u{1b}[2Jc\u{9b}31md\u{202e}evil\u{2066}x\u{200f}\u{7f}\u{0}"
        let line = TerminalText.line(hostile)
        #expect(line == "a\\u{1B}]0;pwn\\u{7}b\\u{1B}[2Jc\\u{9B}31md\\u{202E}evil\\u{2066}x\\u{200F}\\u{7F}\\u{0}")
        #expect(!line.unicodeScalars.contains { TerminalText.isDangerous($0) || TerminalText.isBreak($0) })
        #expect(TerminalText.line(line) == line)
        #expect(TerminalText.line("tab\there") == "tab    here")
        #expect(TerminalText.line("plain text, ünïcode ✓") == "plain text, ünïcode ✓")
    }

    @Test func lineBreaksBecomeMarkedContinuationLines() {
        #expect(
            TerminalText.lines("one\ntwo\r\nthree\rfour\u{2028}five\u{85}six") == [
                "one", "two", "three", "four", "five", "six",
            ]
        )
        #expect(TerminalText.line("a\nb") == "a\\u{A}b")
        let block = TerminalText.block("hi\n[00:41:00] [frank] hi")
        #expect(block == "hi\n" + TerminalText.continuation + "[00:41:00] [frank] hi")
        let shown = TerminalText.displayLines(
            head: "[12:00] [bob] ",
            text: String(repeating: "x", count: 6) + "[00:41] [frank] hi",
            width: 20
        )
        #expect(shown.first == "[12:00] [bob] xxxxxx")
        #expect(shown.dropFirst().allSatisfy { $0.hasPrefix(TerminalText.continuation) })
    }

    @Test func jsonKeepsTheTextButEscapesWhatATerminalWouldActOn() throws {
        let text = "x\u{9b}y\u{202e}z\u{2028}w\u{7f}"
        let encoded = String(decoding: try JSONSerialization.data(withJSONObject: ["text": text]), as: UTF8.self)
        let safe = TerminalText.json(encoded)
        #expect(!safe.unicodeScalars.contains { TerminalText.isDangerous($0) || TerminalText.isBreak($0) })
        let decoded = try JSONSerialization.jsonObject(with: Data(safe.utf8)) as? [String: String]
        #expect(decoded?["text"] == text)
    }

    /// `parley read` (the real binary) of a message that tries to forge a line
    /// and to retitle the terminal shows neither.
    @Test func readShowsNoForgedLineAndNoRawEscape() async throws {
        let binary = ChatTerminalTests.repository.appendingPathComponent(".build/debug/parley").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the executable first (`swift build`)")
        let harness = Harness()
        try await harness.start()
        let (alice, bob) = try await harness.aliceAndBob()
        _ = try await alice.send("hi\n[00:41:00] [frank] hi", to: "g")
        _ = try await alice.send("title \u{1b}]0;pwn\u{07} \u{202e}olleh", to: "g")
        // Stored before the binary runs, so its output does not hang on a loaded machine's sync.
        try await bob.sync()
        await bob.close()

        let plain = try Self.run(binary, ["read", "g", "--home", harness.root + "/bob"], password: "password of bob")
        #expect(plain.contains("[alice] hi"))
        #expect(!plain.split(separator: "\n").contains { $0.hasPrefix("[00:41:00]") })
        #expect(plain.contains(TerminalText.continuation + "[00:41:00] [frank] hi"))
        #expect(!plain.unicodeScalars.contains { TerminalText.isDangerous($0) })
        #expect(plain.contains("\\u{1B}]0;pwn\\u{7}") && plain.contains("\\u{202E}olleh"))

        let json = try Self.run(
            binary,
            ["read", "g", "--json", "--home", harness.root + "/bob"],
            password: "password of bob"
        )
        #expect(!json.unicodeScalars.contains { TerminalText.isDangerous($0) })
        let texts = json.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }.compactMap { $0["text"] as? String }
        #expect(texts.contains("title \u{1b}]0;pwn\u{07} \u{202e}olleh"))
        await alice.close()
        await harness.stop()
    }

    /// Runs the binary with its standard output in a file; returns that output.
    static func run(_ binary: String, _ arguments: [String], password: String) throws -> String {
        // Errors go to the same file, so a failing expectation shows why the command failed.
        try ChildProcess.run(binary, arguments, environment: ["PARLEY_PASSWORD": password])
    }
}
