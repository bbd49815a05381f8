import ArgumentParser
import ParleyChat
import ParleyClient

struct Upgrade: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a group to post-quantum encryption (admins only); it keeps its name, members and history."
    )
    @OptionGroup var options: ClientOptions
    @Argument var group: String

    func run() async throws {
        try await options.run { try await $0.upgrade(group) }
        // The chat's /upgrade says the same (CommandOutcome.upgraded).
        print(TerminalText.line(CommandOutcome.upgraded(group).sentence))
    }
}
