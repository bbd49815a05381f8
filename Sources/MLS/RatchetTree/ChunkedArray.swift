/// An array kept as copy-on-write chunks of 64 elements.
///
/// A group copies its ratchet tree on every commit: processing works on a
/// copy so that a failure leaves the group untouched, and the old epoch's
/// tree is kept for late application messages. With a flat array each copy
/// that is then changed duplicates every node, O(n) for an O(log n) change.
/// Here a copy shares the chunks; changing it duplicates the table of chunk
/// references (n / 64 of them) and the few chunks the change touches.
struct ChunkedArray<Element>: RandomAccessCollection {
    private static var shift: Int { 6 }
    private static var chunkSize: Int { 1 << shift }
    private static var mask: Int { chunkSize - 1 }

    private var chunks: [[Element]] = []
    private(set) var count = 0

    init() {}

    init(repeating element: Element, count: Int) {
        append(repeating: element, count: count)
    }

    init(_ elements: some Sequence<Element>) {
        for element in elements { append(element) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(position: Int) -> Element {
        get {
            precondition(position >= 0 && position < count, "index out of range")
            return chunks[position >> Self.shift][position & Self.mask]
        }
        set {
            precondition(position >= 0 && position < count, "index out of range")
            // Nested subscripts mutate in place: only a shared table or chunk is copied.
            chunks[position >> Self.shift][position & Self.mask] = newValue
        }
    }

    mutating func append(_ element: Element) {
        if count & Self.mask == 0 {
            var chunk: [Element] = []
            chunk.reserveCapacity(Self.chunkSize)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(element)
        count += 1
    }

    mutating func append(repeating element: Element, count extra: Int) {
        for _ in 0..<extra { append(element) }
    }

    mutating func removeLast(_ k: Int) {
        precondition(k >= 0 && k <= count, "cannot remove more elements than there are")
        count -= k
        chunks.removeLast(chunks.count - (count + Self.mask) / Self.chunkSize)
        if count & Self.mask != 0 {
            chunks[chunks.count - 1].removeLast(chunks[chunks.count - 1].count - (count & Self.mask))
        }
    }
}

extension ChunkedArray: Sendable where Element: Sendable {}

/// A dictionary split into 256 shards by key hash, for the same reason as
/// ``ChunkedArray``: changing a copy duplicates one shard, not every entry.
struct ShardedDictionary<Key: Hashable, Value> {
    private static var shardCount: Int { 256 }
    private var shards = [[Key: Value]](repeating: [:], count: shardCount)

    init() {}

    private static func shard(of key: Key) -> Int {
        Int(UInt(bitPattern: key.hashValue) % UInt(shardCount))
    }

    subscript(key: Key) -> Value? {
        get { shards[Self.shard(of: key)][key] }
        set { shards[Self.shard(of: key)][key] = newValue }
    }
}

extension ShardedDictionary: Sendable where Key: Sendable, Value: Sendable {}
