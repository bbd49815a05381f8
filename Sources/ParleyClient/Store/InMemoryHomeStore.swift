import MLS
import Synchronization

/// A ``HomeStore`` in memory: the engine's unit tests run on it (a "restart" is a new
/// engine on the same store). Nothing is sealed; nothing survives the process.
final class InMemoryHomeStore: HomeStore {
    private struct Contents {
        var groups: [String: StoredGroup] = [:]
        var history: [String: [HistoryEntry]] = [:]
        var outbox: [QueuedMessage] = []
        var nextRow: Int64 = 1
        var keyPackages: [[UInt8]: KeyPackageBundle] = [:]
        var knownKeys: [String: [UInt8]] = [:]
        var contactPins: [String: ContactPin] = [:]
    }
    private let contents = Mutex(Contents())

    init() {}

    func groups() throws -> [StoredGroup] { contents.withLock { Array($0.groups.values) } }

    func save(
        _ group: StoredGroup,
        appending lines: [HistoryEntry],
        confirming confirmed: Int64?,
        consuming consumed: [UInt8]?
    ) throws {
        contents.withLock {
            $0.groups[group.record.name] = group
            $0.history[group.record.name, default: []] += lines
            if let confirmed { $0.outbox.removeAll { $0.row == confirmed } }
            if let consumed { $0.keyPackages.removeValue(forKey: consumed) }
        }
    }

    func deleteGroup(named name: String) throws {
        contents.withLock {
            $0.groups.removeValue(forKey: name)
            $0.outbox.removeAll { $0.item.group == name }
        }
    }

    func history(of name: String) throws -> [HistoryEntry] { contents.withLock { $0.history[name] ?? [] } }

    func appendHistory(_ entry: HistoryEntry, to name: String) throws {
        contents.withLock { $0.history[name, default: []].append(entry) }
    }

    func outbox() throws -> [QueuedMessage] { contents.withLock { $0.outbox } }

    @discardableResult func enqueue(_ item: OutboxItem) throws -> Int64 {
        contents.withLock {
            let row = $0.nextRow
            $0.nextRow += 1
            $0.outbox.append(QueuedMessage(row: row, item: item))
            return row
        }
    }

    func update(_ queued: QueuedMessage) throws {
        contents.withLock { contents in
            if let index = contents.outbox.firstIndex(where: { $0.row == queued.row }) {
                contents.outbox[index] = queued
            }
        }
    }

    func park(_ queued: QueuedMessage, line: HistoryEntry) throws {
        contents.withLock {
            $0.outbox.removeAll { $0.row == queued.row }
            $0.history[queued.item.group, default: []].append(line)
        }
    }

    func storeKeyPackage(_ bundle: KeyPackageBundle, reference: [UInt8]) throws {
        contents.withLock { $0.keyPackages[reference] = bundle }
    }

    func keyPackage(reference: [UInt8]) throws -> KeyPackageBundle? { contents.withLock { $0.keyPackages[reference] } }

    func deleteKeyPackage(reference: [UInt8]) throws {
        _ = contents.withLock { $0.keyPackages.removeValue(forKey: reference) }
    }

    func knownKeys(of user: String) throws -> [UInt8]? { contents.withLock { $0.knownKeys[user] } }

    func setKnownKeys(_ digest: [UInt8], of user: String) throws { contents.withLock { $0.knownKeys[user] = digest } }

    func contactPin(of user: String) throws -> ContactPin? { contents.withLock { $0.contactPins[user] } }

    func setContactPin(_ pin: ContactPin, of user: String) throws { contents.withLock { $0.contactPins[user] = pin } }
}
