import Synchronization

/// The bytes of message data each user and each group keeps, for the storage quotas (finding 13),
/// shared by every delivery shard (a user sends to groups on several shards).
///
/// Each account counts what storage holds (`stored`, read from storage once, then kept up to
/// date) and what is queued in the ``LogWriter`` (`queued`): a send reserves its bytes before it
/// is queued, and they move to `stored` on the writer's thread right after the transaction that
/// stored them, or are released if it was refused. So sends in flight count against the quota
/// (review s5 L2), and a recount after pruning never loses them.
///
/// `stored` is read from storage only while nothing of the account is queued, or on the writer's
/// thread between transactions (``recount(_:_:)``): no commit can land between the read and its
/// use, so the count is exact.
final class StoredBytes: Sendable {
    enum Key: Hashable, Sendable {
        case user(Int64)
        case group(Int64)
    }

    struct Account: Sendable {
        /// What storage holds; nil until read.
        var stored: Int64?
        var queued: Int64 = 0

        /// Stored plus queued, nil on overflow (it cannot: both are sums of frame sizes).
        var total: Int64? {
            guard let stored else { return nil }
            let (sum, overflow) = stored.addingReportingOverflow(queued)
            return overflow ? nil : sum
        }
    }

    /// Why a reservation was not made.
    enum Refusal: Error, Equatable {
        /// The account's stored bytes must be read from storage first (``learn(_:stored:)``).
        case unknown(Key)
        case over(Key)
    }

    private let accounts = Mutex<(generation: UInt64, byKey: [Key: Account])>((0, [:]))

    /// Whether `key`'s stored bytes are known, and if not, the generation to hand to
    /// ``learn(_:stored:generation:)`` with what storage holds, read after this call.
    func known(_ key: Key) -> (known: Bool, generation: UInt64) {
        accounts.withLock { ($0.byKey[key]?.stored != nil, $0.generation) }
    }

    /// Records what storage holds for `key`, read while nothing of it was queued (unknown
    /// accounts take no reservations). Ignored if another shard recorded it first (that value
    /// is exact too, and may include later sends), or if an ``invalidate()`` came between.
    func learn(_ key: Key, stored: Int64, generation: UInt64) {
        accounts.withLock { accounts in
            guard accounts.generation == generation, accounts.byKey[key]?.stored == nil else { return }
            accounts.byKey[key, default: Account()].stored = stored
        }
    }

    /// Reserves `size` bytes against the user's and the group's limits, both or neither.
    func reserve(
        _ size: Int64,
        user: Int64,
        group: Int64,
        userLimit: Int64,
        groupLimit: Int64
    ) throws(Refusal) {
        try accounts.withLock { accounts throws(Refusal) in
            for (key, limit) in [(Key.user(user), userLimit), (.group(group), groupLimit)] {
                guard let total = accounts.byKey[key]?.total else { throw .unknown(key) }
                let (after, overflow) = total.addingReportingOverflow(size)
                guard !overflow, after <= limit else { throw .over(key) }
            }
            accounts.byKey[.user(user)]?.queued += size
            accounts.byKey[.group(group)]?.queued += size
        }
    }

    /// The reserved bytes were stored (called on the writer's thread, right after the commit).
    func stored(_ size: Int64, user: Int64, group: Int64) {
        accounts.withLock { accounts in
            for key in [Key.user(user), .group(group)] {
                accounts.byKey[key]?.queued -= size
                if let stored = accounts.byKey[key]?.stored { accounts.byKey[key]?.stored = stored + size }
            }
        }
    }

    /// The reserved bytes were not stored.
    func released(_ size: Int64, user: Int64, group: Int64) {
        accounts.withLock { accounts in
            for key in [Key.user(user), .group(group)] { accounts.byKey[key]?.queued -= size }
        }
    }

    /// After pruning: accounts with nothing queued are read again on next use; the keys of
    /// the others are returned, to be recounted on the writer's thread.
    func invalidate() -> [Key] {
        accounts.withLock { accounts in
            accounts.generation += 1
            var busy: [Key] = []
            for (key, account) in accounts.byKey {
                if account.queued == 0 { accounts.byKey[key]?.stored = nil } else { busy.append(key) }
            }
            return busy
        }
    }

    /// What storage holds now, read on the writer's thread between transactions.
    func recount(_ key: Key, _ stored: Int64) {
        accounts.withLock { accounts in
            if accounts.byKey[key] != nil { accounts.byKey[key]?.stored = stored }
        }
    }

    /// A destroyed group's account, and its bytes from its senders' accounts at next recount.
    func forget(group: Int64) {
        accounts.withLock { accounts in
            if accounts.byKey[.group(group)]?.queued == 0 { accounts.byKey.removeValue(forKey: .group(group)) }
        }
    }

    /// For tests: the account's stored and queued bytes.
    func account(_ key: Key) -> Account? { accounts.withLock { $0.byKey[key] } }
}
