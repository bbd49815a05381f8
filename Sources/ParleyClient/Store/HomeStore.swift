import MLS

/// Where a home keeps what the group engine needs between runs: groups (record and MLS
/// state), history, the outbox, KeyPackage private keys and the keys seen for safety
/// numbers. Typed records in, typed records out; how they are sealed and laid out is the
/// implementation's business (``SealedHomeStore`` over SQLite, ``InMemoryHomeStore`` for tests).
///
/// Contract: each call is atomic; `save` writes a group with the history its change produced
/// (and removes the outbox row that change confirmed) in one transaction, so a crash never
/// leaves a moved epoch without its lines or a confirmed message still queued.
protocol HomeStore: Sendable {
    /// Every group the home knows, in no particular order.
    func groups() throws -> [StoredGroup]
    /// Saves a group with the history lines its change produced; removes outbox row `confirmed`
    /// and, for a group just joined, the one-time KeyPackage `consumed` its Welcome used: a
    /// crash between the two would lose the key the replayed Welcome needs, and the group.
    func save(
        _ group: StoredGroup,
        appending lines: [HistoryEntry],
        confirming confirmed: Int64?,
        consuming consumed: [UInt8]?
    ) throws
    /// Forgets a group's state and queued messages; its history stays readable.
    func deleteGroup(named name: String) throws

    /// The group's history, oldest first (the order it was applied in).
    func history(of name: String) throws -> [HistoryEntry]
    func appendHistory(_ entry: HistoryEntry, to name: String) throws

    /// Queued messages, oldest first.
    func outbox() throws -> [QueuedMessage]
    @discardableResult func enqueue(_ item: OutboxItem) throws -> Int64
    func update(_ queued: QueuedMessage) throws
    /// Removes a queued message that will not be sent and records why in its group.
    func park(_ queued: QueuedMessage, line: HistoryEntry) throws

    func storeKeyPackage(_ bundle: KeyPackageBundle, reference: [UInt8]) throws
    func keyPackage(reference: [UInt8]) throws -> KeyPackageBundle?
    func deleteKeyPackage(reference: [UInt8]) throws

    /// A digest of the signature keys last seen for `user` (safety numbers).
    func knownKeys(of user: String) throws -> [UInt8]?
    func setKnownKeys(_ digest: [UInt8], of user: String) throws

    /// The identity key pinned for `user` and the last signed device list accepted (``ContactPin``).
    func contactPin(of user: String) throws -> ContactPin?
    func setContactPin(_ pin: ContactPin, of user: String) throws
}

extension HomeStore {
    func save(_ group: StoredGroup, appending lines: [HistoryEntry], confirming confirmed: Int64?) throws {
        try save(group, appending: lines, confirming: confirmed, consuming: nil)
    }
}

extension KeyPackageBundle {
    /// The bundle as stored: the KeyPackage, then its three private keys (TLS opaque<V>).
    func storedBytes() throws -> [UInt8] {
        var writer = TLSWriter()
        try writer.write(MLSMessage.keyPackage(keyPackage))
        try writer.writeOpaque(initPrivateKey.bytes)
        try writer.writeOpaque(encryptionPrivateKey.bytes)
        try writer.writeOpaque(signaturePrivateKey.bytes)
        return writer.bytes
    }

    init(storedBytes bytes: [UInt8]) throws {
        var reader = TLSReader(bytes)
        guard case .keyPackage(let keyPackage) = try reader.read(MLSMessage.self) else {
            throw ClientError.damagedHome(.keyPackage)
        }
        self.init(
            keyPackage: keyPackage,
            initPrivateKey: HPKEPrivateKey(try reader.readOpaque()),
            encryptionPrivateKey: HPKEPrivateKey(try reader.readOpaque()),
            signaturePrivateKey: SignaturePrivateKey(try reader.readOpaque())
        )
        try reader.finish()
    }
}
