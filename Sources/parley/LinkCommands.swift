import ArgumentParser
import Foundation
import ParleyClient
import ParleyProtocol

/// `parley link`: the new device's half of linking (docs/PROTOCOL.md, "Linking a device").
struct Link: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Link this new home as a device of your account: shows a code to approve on a device you already use."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "Your username.") var name: String
    @Option(help: "What to call this device (1-64 bytes, no control characters). Default: this computer's name.")
    var deviceName: String?
    @Option(help: "Seconds to wait for the approval (1-3600).") var wait = 600

    func run() async throws {
        guard let server = options.server else {
            throw Operator.Failure(description: "Give the server with --server https://host:port.")
        }
        guard (1...3600).contains(wait) else { throw Operator.Failure(description: "--wait takes 1 to 3600 seconds.") }
        let password = options.password(for: name)
        try await options.run(unlock: false) { client in
            let code = try await client.startLink(
                server: server,
                username: name,
                password: password,
                deviceName: deviceName ?? ParleyClient.localDeviceName()
            )
            print("On a device where you are logged in as \(TerminalText.line(name)), run:")
            print("  parley devices approve \(code)")
            print("Type it only on your own device: its last eight characters are a secret the server never sees.")
            print("Waiting for the approval (up to \(wait) seconds)…")
            // The code must show now, also when standard output is a pipe or a file.
            fflush(nil)
            let deadline = ContinuousClock.now + .seconds(wait)
            while ContinuousClock.now < deadline {
                if let done = try await client.finishLink(password: password) {
                    print(TerminalText.block(LinkText.completion(done)))
                    return
                }
                try await Task.sleep(for: .seconds(2))
            }
            throw Operator.Failure(
                description: "No approval arrived in time; run `parley link` again for a new code."
            )
        }
    }
}

/// `parley devices approve CODE`: the existing device's half.
struct DevicesApprove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a new device by the code it shows: adds it to your groups and sends it your history."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "The code the new device shows, e.g. 7KQ2-MX4P-93TD-R8VW-2C5N-KJ7A-Q3XE.") var code: String
    @Option(help: "Messages of history per group to send to the new device (0-10000).") var messages = 1_000
    @Option(help: "What the new device calls this one in its history. Default: this computer's name.")
    var deviceName: String?

    func run() async throws {
        guard (0...HistoryBundle.maxLinesPerGroup).contains(messages) else {
            throw Operator.Failure(description: "--messages takes 0 to \(HistoryBundle.maxLinesPerGroup).")
        }
        try await options.run { client in
            let approval = try await client.approveLink(
                code: code,
                deviceName: deviceName ?? ParleyClient.localDeviceName(),
                messagesPerGroup: messages
            )
            print(TerminalText.block(LinkText.approval(approval)))
        }
    }
}

/// What linking prints, shared by the CLI (and shaped so the chat can say the same).
enum LinkText {
    static func approval(_ approval: LinkApproval) -> String {
        var lines = ["Approved \(approval.deviceName)."]
        if !approval.addedTo.isEmpty {
            lines.append("Added it to: \(approval.addedTo.sorted().joined(separator: ", ")).")
        }
        for (group, reason) in approval.notAddedTo.sorted(by: { $0.key < $1.key }) {
            lines.append("Not added to \(group): \(reason)")
        }
        lines.append("Sent \(approval.messages) messages of history, end to end encrypted to the new device.")
        return lines.joined(separator: "\n")
    }

    static func completion(_ done: LinkCompletion) -> String {
        var lines = ["Approved by your device \(done.from); this home is linked."]
        for (group, count) in done.imported.sorted(by: { $0.key < $1.key }) {
            lines.append("\(group): \(count) earlier messages from \(done.from).")
        }
        if !done.skipped.isEmpty {
            lines.append(
                "History not taken for: \(done.skipped.sorted().joined(separator: ", ")) (not a member there yet)."
            )
        }
        return lines.joined(separator: "\n")
    }
}
