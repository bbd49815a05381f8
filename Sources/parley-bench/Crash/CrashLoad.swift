import Foundation
import ParleyClient
import Synchronization

/// The crash run's clients: real homes (MLS, outbox, history on disk) sending texts to their
/// group one after another for as long as the run lasts, through every server kill.
final class CrashLoad: Sendable {
    struct Member: Sendable {
        var index: Int
        var client: ParleyClient
        var group: String
    }

    let members: [Member]
    let ledger = CrashLedger()
    private let stopped = Mutex(false)
    private let tasks = Mutex<[Task<Void, Never>]>([])

    private init(members: [Member]) { self.members = members }

    /// Registers `clients` homes, makes `groups` groups (client g is the admin of group g and
    /// adds the clients g + groups, g + 2·groups, …), and starts every client sending.
    static func start(
        url: String,
        homes: String,
        clients: Int,
        groups: Int,
        status: (String) -> Void
    ) async throws -> CrashLoad {
        status("registering \(clients) clients in \(groups) groups")
        var all: [ParleyClient] = []
        for index in 0..<clients {
            let client = try ParleyClient(home: homes + "/c\(index)")
            try await client.register(server: url, username: "crash\(index)", password: "crash test password")
            all.append(client)
        }
        for group in 0..<groups {
            let invited = stride(from: group + groups, to: clients, by: groups).map { "crash\($0)" }
            try await all[group].createGroup("g\(group)")
            try await all[group].add(invited, to: "g\(group)")
        }
        for client in all { try await client.sync() }
        let load = CrashLoad(
            members: all.enumerated().map {
                Member(index: $0.offset, client: $0.element, group: "g\($0.offset % groups)")
            }
        )
        load.tasks.withLock { tasks in
            tasks = load.members.map { member in Task { await load.send(as: member) } }
        }
        return load
    }

    var isStopped: Bool { stopped.withLock { $0 } }

    /// Sends numbered texts until stopped. A send that ends queued (the server went away
    /// before its echo) stays in the home's outbox; the client syncs until that succeeds,
    /// which sends it again, before it types the next text.
    private func send(as member: Member) async {
        var count = 0
        while !isStopped {
            count += 1
            let text = "c\(member.index) m\(count)"
            ledger.submitted(.init(client: member.index, group: member.group, text: text))
            do {
                if case .sent(let seq) = try await member.client.send(text, to: member.group) {
                    ledger.acknowledged(.init(client: member.index, group: member.group, text: text, seq: seq))
                    continue
                }
            } catch {
                ledger.failed()
            }
            await syncUntilReachable(member, deadline: nil)
        }
    }

    /// Syncs until one sync succeeds (or the run stops, or `deadline` passes); true on success.
    @discardableResult
    private func syncUntilReachable(_ member: Member, deadline: ContinuousClock.Instant?) async -> Bool {
        while deadline.map({ ContinuousClock.now < $0 }) ?? !isStopped {
            do {
                try await member.client.sync()
                return true
            } catch {
                ledger.failed()
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        return false
    }

    /// Stops sending, lets every outbox drain, then syncs everyone once more so all have
    /// received everything; returns each member's text lines.
    func converge() async throws -> [CrashCheck.View] {
        stopped.withLock { $0 = true }
        for task in tasks.withLock({ $0 }) { await task.value }
        for _ in 0..<2 {
            for member in members {
                guard await syncUntilReachable(member, deadline: .now + .seconds(60)) else {
                    throw CrashLoadError.cannotSync(client: member.index)
                }
            }
        }
        var views: [CrashCheck.View] = []
        for member in members {
            let lines = try await member.client.history(member.group).filter { $0.kind == .text }.map {
                CrashCheck.Line(seq: $0.seq, sender: $0.sender, text: $0.text)
            }
            views.append(CrashCheck.View(client: member.index, group: member.group, entries: lines))
            await member.client.close()
        }
        return views
    }
}

enum CrashLoadError: Error, CustomStringConvertible {
    case cannotSync(client: Int)

    var description: String {
        switch self {
        case .cannotSync(let client): "client \(client) could not sync with the restarted server within 60 s"
        }
    }
}
