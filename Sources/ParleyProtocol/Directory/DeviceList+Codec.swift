import MLS

extension DeviceList {
    /// The list's encoding (`ParleyDeviceList`, see ``DeviceList``).
    public func encoded() throws(DeviceListError) -> [UInt8] {
        var writer = TLSWriter()
        do {
            writer.write(Self.format)
            try writer.writeOpaque(Array(user.utf8))
            try writer.writeOpaque(identityKey)
            writer.write(version)
            try writer.writeVector { entriesWriter in
                for entry in entries { try entry.encode(to: &entriesWriter) }
            }
        } catch {
            throw .malformed
        }
        guard writer.bytes.count <= Self.maxEncodedBytes else { throw .malformed }
        return writer.bytes
    }

    /// Reads one `ParleyDeviceList` strictly: format 1, a valid user name, a 32-byte identity key,
    /// at most ``maxEntries`` entries with valid names and keys, no key listed twice.
    init(from reader: inout TLSReader) throws(DeviceListError) {
        do {
            let format = try reader.readUInt8()
            guard format == Self.format else { throw DeviceListError.unsupportedFormat(format) }
            guard let user = String(validating: try reader.readOpaque(), as: UTF8.self), Username.isValid(user) else {
                throw DeviceListError.malformed
            }
            let identityKey = try reader.readOpaque()
            guard identityKey.count == AccountIdentity.publicKeyBytes else { throw DeviceListError.malformed }
            let version = try reader.read(UInt64.self)
            let entries = try reader.readVector(of: { try DeviceEntry(from: &$0) })
            self.init(user: user, identityKey: identityKey, version: version, entries: entries)
        } catch let error as DeviceListError {
            throw error
        } catch {
            throw .malformed
        }
        guard entries.count <= Self.maxEntries, Set(entries.map(\.signatureKey)).count == entries.count else {
            throw .malformed
        }
    }

    /// `SignContent` in the manner of RFC 9420 §5.1.2, with Parley's own label so that no MLS
    /// signature (whose labels begin "MLS 1.0 ") can ever be taken for a device list:
    /// `struct { opaque label<V> = "Parley DeviceList v1"; opaque content<V> = ParleyDeviceList; }`.
    func signContent() throws(DeviceListError) -> [UInt8] {
        let content = try encoded()
        var writer = TLSWriter(reservingCapacity: content.count + 32)
        do {
            try writer.writeOpaque(Array(SignedDeviceList.label.utf8))
            try writer.writeOpaque(content)
        } catch {
            throw .malformed
        }
        return writer.bytes
    }
}

extension DeviceEntry {
    func encode(to writer: inout TLSWriter) throws {
        try writer.writeOpaque(signatureKey)
        try writer.writeOpaque(Array(name.utf8))
        writer.write(addedAt)
        if let revokedAt {
            writer.write(UInt8(1))
            writer.write(revokedAt)
        } else {
            writer.write(UInt8(0))
        }
    }

    init(from reader: inout TLSReader) throws {
        let signatureKey = try reader.readOpaque()
        guard (1...DeviceList.maxSignatureKeyBytes).contains(signatureKey.count) else {
            throw DeviceListError.malformed
        }
        guard let name = String(validating: try reader.readOpaque(), as: UTF8.self), DeviceName.isValid(name) else {
            throw DeviceListError.malformed
        }
        let addedAt = try reader.read(UInt64.self)
        let revokedAt = try reader.readOptional(UInt64.self)
        self.init(signatureKey: signatureKey, name: name, addedAt: addedAt, revokedAt: revokedAt)
    }
}
