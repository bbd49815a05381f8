import ParleyClient
import Testing

@testable import ParleyChat

/// `/devices approve CODE` in the chat: parsed from the command table, run by the worker with no
/// group open, and its outcome said in one line.
@Suite struct LinkChatCommandTests {
    @Test func devicesApproveParsesToItsCommand() throws {
        #expect(
            try ChatCommand.parse("/devices approve 7KQ2-MX4P-93TD-R8VW") == .approveDevice(code: "7KQ2-MX4P-93TD-R8VW")
        )
        #expect(try ChatCommand.parse("  /devices   approve abcd ") == .approveDevice(code: "abcd"))
    }

    @Test func devicesAloneListsAndAnythingButApproveAndACodeIsRefusedWithUsage() throws {
        #expect(try ChatCommand.parse("/devices") == .devices)
        let spec = try #require(CommandSpec.all.first { $0.verb == .devices })
        #expect(spec.usage == "/devices [approve CODE]")
        for line in ["/devices approve", "/devices revoke laptop"] {
            #expect(throws: ChatParseError.missingArgument(spec)) { try ChatCommand.parse(line) }
        }
        #expect(throws: ChatParseError.extraArguments(spec)) { try ChatCommand.parse("/devices approve A B") }
    }

    @Test func theDeviceListIsOneLineNamingThisDevice() {
        let devices = [
            DeviceInfo(name: "desktop", addedAt: 0, isThisDevice: true, connected: true),
            DeviceInfo(name: "phone", addedAt: 0, revokedAt: 0, isThisDevice: false),
            DeviceInfo(name: "laptop", addedAt: 0, isThisDevice: false),
        ]
        let epoch = "1970-01-01T00:00:00Z"
        #expect(
            CommandOutcome.devices(devices).sentence
                == "Your devices: desktop  added \(epoch)  online now  (this device); "
                + "phone  added \(epoch)  revoked \(epoch); laptop  added \(epoch)  not seen since the server started"
        )
    }

    @Test func theWorkerGetsItWithNoGroupNeededAndTheOutcomeIsOneLine() {
        var chat = ChatState(username: "alice", group: nil)
        for character in "/devices approve 7KQ2-MX4P-93TD-R8VW" {
            _ = chat.handle(.character(character), rows: 24, columns: 80)
        }
        #expect(
            chat.handle(.enter, rows: 24, columns: 80) == [
                .run(.approveDevice(code: "7KQ2-MX4P-93TD-R8VW"), group: nil)
            ]
        )
        let approval = LinkApproval(deviceName: "laptop", addedTo: ["g", "h"], notAddedTo: ["x": "why"], messages: 12)
        #expect(
            CommandOutcome.deviceApproved(approval).sentence
                == "Approved laptop: added to 2 groups, sent 12 messages of history; not added to x."
        )
    }
}
