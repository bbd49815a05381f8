import ArgumentParser
import Foundation
import ParleyClient

/// `parley devices` and `parley devices revoke NAME`: the account's signed device list.
struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List this account's devices, as its signed device list names them.",
        subcommands: [DevicesList.self, DevicesRevoke.self],
        defaultSubcommand: DevicesList.self
    )
}

struct DevicesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List this account's devices.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        var devices: [DeviceInfo] = []
        try await options.run { devices = try await $0.devices() }
        for device in devices {
            let added = Date(timeIntervalSince1970: Double(device.addedAt) / 1000).formatted(.iso8601)
            let state = device.revokedAt.map {
                "revoked \(Date(timeIntervalSince1970: Double($0) / 1000).formatted(.iso8601))"
            }
            let this = device.isThisDevice ? " (this device)" : ""
            print(TerminalText.line("\(device.name)  added \(added)\(state.map { "  \($0)" } ?? "")\(this)"))
        }
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
