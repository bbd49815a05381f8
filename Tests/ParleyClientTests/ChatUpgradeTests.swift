import Foundation
import MLS
import ParleyProtocol
import Testing

@testable import ParleyChat
@testable import ParleyClient

/// `/upgrade` in `parley chat` on a real server: typed in the open group, it is `parley upgrade`
/// (the same client call), and the screen says what the command prints, refusals included.
@Suite(.serialized) struct ChatUpgradeTests {
    /// Types `line` and Enter into `chat`, runs what the screen asks of the worker, and applies
    /// the outcome; returns the notice the screen then shows.
    static func type(_ line: String, into chat: inout ChatState, worker: ChatWorker) async -> String {
        for character in line { _ = chat.handle(.character(character), rows: 24, columns: 80) }
        for request in chat.handle(.enter, rows: 24, columns: 80) {
            guard case .run(let command, let group) = request, let group else { continue }
            let result: Result<CommandOutcome, any Error>
            do {
                result = .success(try await worker.perform(command, in: group))
            } catch {
                result = .failure(error)
            }
            _ = chat.apply(.finished(command, result), columns: 80)
        }
        return chat.screen.notice
    }

    /// What `parley upgrade` prints for an error: ClientOptions.run shows "\(error)".
    static func commandLine(_ problem: UpgradeProblem) -> String { "\(ClientError.upgrade(problem))" }

    @Test func slashUpgradeIsParleyUpgradeWithItsSentences() async throws {
        let harness = Harness()
        try await harness.start()
        let alice = try await harness.registered("alice")
        let bob = try await harness.registered("bob")
        try await alice.createGroup("g")
        try await alice.add(["bob"], to: "g")
        try await alice.createGroup("solo")
        try await bob.sync()
        let requests = RequestQueue()
        let alicesWorker = ChatWorker(client: alice, requests: requests) { _ in }
        let bobsWorker = ChatWorker(client: bob, requests: requests) { _ in }

        var nowhere = ChatState(username: "alice", group: nil)
        #expect(await Self.type("/upgrade", into: &nowhere, worker: alicesWorker) == "\(ChatRefusal.noGroupOpen)")

        // bob is no admin: his client refuses before anything is sent, in the command's words.
        var bobsChat = ChatState(username: "bob", group: "g")
        let refused = await Self.type("/upgrade", into: &bobsChat, worker: bobsWorker)
        #expect(refused == "Only an admin of g can upgrade it.")
        #expect(refused == Self.commandLine(.notAdmin(group: "g")))
        #expect(try await bob.group("g").suite.suite == ParleySuites.standard)

        var alone = ChatState(username: "alice", group: "solo")
        #expect(
            await Self.type("/upgrade", into: &alone, worker: alicesWorker)
                == Self.commandLine(.alone(group: "solo"))
        )

        var alicesChat = ChatState(username: "alice", group: "g")
        #expect(
            await Self.type("/upgrade", into: &alicesChat, worker: alicesWorker)
                == "Upgraded g to post-quantum encryption."
        )
        #expect(CommandOutcome.upgraded("g").sentence == "Upgraded g to post-quantum encryption.")
        try await bob.sync()
        for client in [alice, bob] {
            #expect(try await client.group("g").suite.suite == ParleySuites.postQuantum)
        }
        #expect(
            try await bob.history("g").contains {
                $0.kind == .system && $0.text.hasPrefix("alice upgraded this group to post-quantum")
            }
        )
        #expect(
            await Self.type("/upgrade", into: &alicesChat, worker: alicesWorker)
                == Self.commandLine(.alreadyPostQuantum(group: "g"))
        )
        for client in [alice, bob] { await client.close() }
        await harness.stop()
    }
}
