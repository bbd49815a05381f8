import MLS
import ParleyProtocol
import Testing

/// The signed device directory's format: what a verifier accepts and the forgeries it refuses.
@Suite struct DevicesDirectoryTests {
    let identity = AccountIdentity()
    let phone = DeviceEntry(signatureKey: [UInt8](repeating: 1, count: 32), name: "phone", addedAt: 1_000)
    let laptop = DeviceEntry(signatureKey: [UInt8](repeating: 2, count: 32), name: "laptop", addedAt: 2_000)

    func firstList() throws -> DeviceList {
        try DeviceList.first(user: "frank", identityKey: identity.publicKey, device: phone)
    }

    @Test func signedListRoundTripsAndVerifies() throws {
        let list = try firstList().adding(laptop)
        let signed = try identity.sign(list)
        let decoded = try SignedDeviceList(encoded: try signed.encoded())
        let verified = try decoded.verify(user: "frank", pinnedIdentityKey: identity.publicKey)
        #expect(verified == list)
        #expect(verified.version == 2)
        #expect(verified.activeDevices.map(\.name) == ["phone", "laptop"])
    }

    @Test func everyFlippedBitIsRefused() throws {
        let bytes = try identity.sign(try firstList()).encoded()
        for index in bytes.indices {
            for bit in 0..<8 {
                var tampered = bytes
                tampered[index] ^= 1 << bit
                // Decoding may fail (malformed) or succeed; verification must never pass.
                let verified = try? SignedDeviceList(encoded: tampered)
                    .verify(user: "frank", pinnedIdentityKey: identity.publicKey)
                #expect(verified == nil, "bit \(bit) of byte \(index)")
            }
        }
    }

    @Test func listSignedByAnotherIdentityIsRefused() throws {
        let mallory = AccountIdentity()
        let forged = try mallory.sign(
            DeviceList.first(user: "frank", identityKey: mallory.publicKey, device: laptop)
        )
        #expect(throws: DeviceListError.identityKeyChanged) {
            try forged.verify(user: "frank", pinnedIdentityKey: identity.publicKey)
        }
        // Without a pin the forgery verifies under its own key: that is what TOFU pins.
        #expect(try forged.verify(user: "frank", pinnedIdentityKey: nil).identityKey == mallory.publicKey)
    }

    @Test func listForAnotherUserIsRefused() throws {
        let signed = try identity.sign(try firstList())
        #expect(throws: DeviceListError.userMismatch(expected: "dave", found: "frank")) {
            try signed.verify(user: "dave", pinnedIdentityKey: identity.publicKey)
        }
    }

    @Test func replayedOlderVersionIsRefused() throws {
        let first = try firstList()
        let second = try first.adding(laptop)
        let third = try second.revoking(signatureKey: laptop.signatureKey, at: 3_000)
        let replay = try identity.sign(second)
        #expect(throws: DeviceListError.staleVersion(known: 3, offered: 2)) {
            try replay.verify(user: "frank", pinnedIdentityKey: identity.publicKey, known: third)
        }
        #expect(
            try identity.sign(third).verify(user: "frank", pinnedIdentityKey: identity.publicKey, known: third) == third
        )
    }

    @Test func revokedDeviceIsInactiveAndNeverReturns() throws {
        let list = try firstList().adding(laptop).revoking(signatureKey: laptop.signatureKey, at: 3_000)
        #expect(!list.isActive(laptop.signatureKey))
        #expect(list.isActive(phone.signatureKey))
        #expect(throws: DeviceListError.duplicateDevice) { try list.adding(laptop) }
        #expect(throws: DeviceListError.unknownDevice) {
            try list.revoking(signatureKey: laptop.signatureKey, at: 4_000)
        }
    }

    @Test func activeDeviceCapHolds() throws {
        var list = try firstList()
        for index in 2...3 {
            let device = DeviceEntry(
                signatureKey: [UInt8](repeating: UInt8(index + 10), count: 32),
                name: "d\(index)",
                addedAt: 0
            )
            list = try list.adding(device, maxActiveDevices: 3)
        }
        #expect(throws: DeviceListError.tooManyDevices(limit: 3)) { try list.adding(laptop, maxActiveDevices: 3) }
    }

    @Test func hostileDeviceNamesAreRefused() throws {
        for name in ["", "evil\u{1B}[2J", "line\nbreak", String(repeating: "x", count: 65)] {
            let device = DeviceEntry(signatureKey: [9], name: name, addedAt: 0)
            #expect(throws: DeviceListError.invalidDeviceName) { try firstList().adding(device) }
        }
    }

    @Test func truncatedAndTrailingInputIsMalformed() throws {
        let bytes = try identity.sign(try firstList()).encoded()
        for length in 0..<bytes.count {
            #expect(throws: DeviceListError.self) { try SignedDeviceList(encoded: Array(bytes.prefix(length))) }
        }
        #expect(throws: DeviceListError.malformed) { try SignedDeviceList(encoded: bytes + [0]) }
    }

    @Test func recoveryCodeRestoresTheIdentity() throws {
        let code = identity.recoveryCode
        #expect(code.count == 58 + 14)
        let restored = try AccountIdentity(seed: try RecoveryCode.decode(code.lowercased()))
        #expect(restored.publicKey == identity.publicKey)
        var typo = Array(code)
        typo[0] = typo[0] == "A" ? "B" : "A"
        #expect(throws: DeviceListError.invalidRecoveryCode) { try RecoveryCode.decode(String(typo)) }
    }
}
