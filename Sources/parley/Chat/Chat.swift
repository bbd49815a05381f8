import ArgumentParser
import Foundation
import ParleyChat
import ParleyClient

/// `parley chat [GROUP]`: the full-screen client (the ParleyChat library).
struct Chat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Full-screen chat: message pane, status line, an input line that arriving messages never disturb."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "Open this group; without it the chat starts on the list of groups.") var group: String?

    func run() async throws {
        let client = try options.client()
        guard let username = await client.username else {
            throw Operator.Failure(description: "\(ClientError.notLoggedIn)")
        }
        do {
            try await client.unlock(password: options.password(for: username))
        } catch {
            throw Operator.Failure(description: TerminalText.block("\(error)"))
        }
        await ChatApp.run(client: client, username: username, group: group)
    }
}
