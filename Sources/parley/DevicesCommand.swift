import ArgumentParser
import Foundation
import ParleyClient
import ParleyProtocol

/// `parley devices` and `parley devices revoke NAME`: the account's signed device list.
struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, approve (link) and revoke this account's devices, as its signed device list names them.",
        subcommands: [DevicesList.self, DevicesApprove.self, DevicesApproveKey.self, DevicesRevoke.self],
        defaultSubcommand: DevicesList.self
    )
}

struct DevicesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List this account's devices.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        var devices: [DeviceInfo] = []
        try await options.run { devices = try await $0.devices() }
        for device in devices { print(TerminalText.line(device.summary)) }
    }
}

struct DevicesRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Sign a device out of the account and remove it from every group."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "The device's name, as `parley devices` shows it.") var name: String

    func run() async throws {
        var groups: [String] = []
        try await options.run { groups = try await $0.revokeDevice(named: name) }
        let from = groups.isEmpty ? "" : " and removed it from \(groups.joined(separator: ", "))"
        print(TerminalText.line("Revoked \(name)\(from)."))
    }
}

/// `parley devices approve-key KEY --name NAME`: signs a new home's device key (printed by its
/// `parley login`) into the account's list. The whole key is copied from one screen to the
/// other, so the server cannot substitute its own; `parley link` will make this a short code.
struct DevicesApproveKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve-key",
        abstract: "Sign a new device, by the key its `parley login` printed, into this account's device list."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "The new device's signature key: 64 hexadecimal digits.") var key: String
    @Option(help: "A name for the new device, e.g. laptop.") var name: String

    func validate() throws {
        guard Self.bytes(ofHex: key) != nil else {
            throw ValidationError("The key must be the 64 hexadecimal digits the new device's login printed.")
        }
    }

    func run() async throws {
        guard let signatureKey = Self.bytes(ofHex: key) else { return }
        try await options.run { try await $0.approveDevice(signatureKey: signatureKey, name: name) }
        print(TerminalText.line("Approved \(name); it can log in now."))
    }

    /// Exactly 32 bytes of hexadecimal (an Ed25519 public key), else nil.
    static func bytes(ofHex text: String) -> [UInt8]? { Hex.decode(text, count: 32) }
}
