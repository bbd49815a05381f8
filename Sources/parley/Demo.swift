import ArgumentParser
import Foundation
import ParleyClient
import ParleyDemo

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a server and three users through the seeds' scenario, then show what the server stored."
    )

    func run() async throws {
        print("== Parley demo: alice, bob and charlie on a fresh server ==\n")
        let outcome: DemoScenario.Outcome
        do {
            outcome = try await DemoScenario().run { print("  \($0)") }
        } catch {
            throw Operator.Failure(description: TerminalText.block("The demo failed: \(error)"))
        }
        for name in ["alice", "bob", "charlie"] {
            print("\n== What \(name) sees in group1 ==")
            for entry in outcome.views[name] ?? [] { print("  " + Read.format(entry, json: false)) }
        }
        print("\n== What the server stored (\(outcome.dataDirectory)) ==")
        for row in outcome.storedMessages {
            print("  \(row.group) #\(row.seq): \(row.bytes) bytes  \(row.prefix)…")
        }
        if outcome.leakedPlaintexts.isEmpty {
            print(
                "\nNone of the \(outcome.plaintexts.count) messages appears in plaintext in any server file: the server holds ciphertext only."
            )
        } else {
            throw Operator.Failure(description: "Plaintext found in server files: \(outcome.leakedPlaintexts)")
        }
        let charlieSaw = (outcome.views["charlie"] ?? []).contains { $0.text == DemoScenario.afterRemoval }
        print(
            charlieSaw
                ? "charlie read a message sent after his removal — this must not happen."
                : "charlie, removed, never saw \"\(DemoScenario.afterRemoval)\"."
        )
    }
}
