import Testing

@testable import MLS

/// RFC 9420 §9: the secret tree's ratchets, out-of-order bounds and deletion.
@Suite struct SecretTreeTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    func tree(leaves: UInt32 = 8, _ configuration: SecretTreeConfiguration = .default) -> SecretTree {
        SecretTree(
            suite,
            encryptionSecret: [UInt8](repeating: 7, count: 32),
            leafCount: LeafCount(rawValue: leaves)!,
            configuration: configuration
        )
    }

    @Test func senderAndReceiverDeriveTheSameKeys() throws {
        var sender = tree()
        var receiver = tree()
        for expected in 0..<5 as Range<UInt32> {
            let sent = try sender.nextKey(for: LeafIndex(3), .application)
            #expect(sent.generation == expected)
            #expect(try receiver.key(for: LeafIndex(3), .application, generation: expected) == sent)
        }
        // Handshake and application ratchets are independent.
        #expect(try sender.nextKey(for: LeafIndex(3), .handshake).generation == 0)
    }

    @Test func aReplayedGenerationIsRejected() throws {
        var receiver = tree()
        _ = try receiver.key(for: LeafIndex(1), .application, generation: 0)
        #expect(throws: MLSError.generationAlreadyUsed(0)) {
            try receiver.key(for: LeafIndex(1), .application, generation: 0)
        }
    }

    @Test func lateMessagesWithinTheWindowDecryptOnce() throws {
        var sender = tree()
        let keys = try (0..<6).map { _ in try sender.nextKey(for: LeafIndex(2), .application) }
        var receiver = tree()
        #expect(try receiver.key(for: LeafIndex(2), .application, generation: 5) == keys[5])
        #expect(try receiver.key(for: LeafIndex(2), .application, generation: 1) == keys[1])
        #expect(try receiver.key(for: LeafIndex(2), .application, generation: 4) == keys[4])
        #expect(throws: MLSError.generationAlreadyUsed(1)) {
            try receiver.key(for: LeafIndex(2), .application, generation: 1)
        }
    }

    @Test func generationsTooFarAheadAreRejectedWithoutDerivingThem() throws {
        var receiver = tree(.init(maximumForwardDistance: 10, maximumRetainedKeys: 5))
        #expect(throws: MLSError.generationTooFarAhead(requested: 11, current: 0)) {
            try receiver.key(for: LeafIndex(0), .application, generation: 11)
        }
        _ = try receiver.key(for: LeafIndex(0), .application, generation: 10)
        #expect(throws: MLSError.generationTooFarAhead(requested: 4_000_000_000, current: 11)) {
            try receiver.key(for: LeafIndex(0), .application, generation: 4_000_000_000)
        }
    }

    @Test func onlyTheNewestSkippedKeysAreRetained() throws {
        var receiver = tree(.init(maximumForwardDistance: 100, maximumRetainedKeys: 3))
        _ = try receiver.key(for: LeafIndex(0), .application, generation: 10)
        // Skipped 0...9; only 7, 8, 9 remain.
        #expect(throws: MLSError.generationAlreadyUsed(6)) {
            try receiver.key(for: LeafIndex(0), .application, generation: 6)
        }
        for kept in [7, 8, 9] as [UInt32] {
            #expect(try receiver.key(for: LeafIndex(0), .application, generation: kept).generation == kept)
        }
    }

    @Test func derivationIsLazyAndDeletesConsumedNodeSecrets() throws {
        var receiver = tree(leaves: 1024)
        #expect(receiver.heldNodeSecretCount == 1)
        _ = try receiver.key(for: LeafIndex(0), .application, generation: 0)
        // Root, then one sibling per level is kept (10 levels); the path itself and the leaf are deleted.
        #expect(receiver.heldNodeSecretCount == 10)
        _ = try receiver.key(for: LeafIndex(1), .application, generation: 0)
        #expect(receiver.heldNodeSecretCount == 9)
    }

    @Test func leavesOutsideTheTreeAreRejected() {
        var receiver = tree(leaves: 4)
        #expect(throws: MLSError.invalidTreeIndex(4)) {
            try receiver.key(for: LeafIndex(4), .application, generation: 0)
        }
    }

    @Test func keysAreNotPrinted() throws {
        var sender = tree()
        let key = try sender.nextKey(for: LeafIndex(0), .application)
        #expect("\(key)" == "RatchetKey(generation: 0, redacted)")
    }
}
