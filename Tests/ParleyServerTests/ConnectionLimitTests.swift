import Foundation
import NIOCore
import ParleyProtocol
import Testing

@testable import ParleyServer

/// Bounds on what one address or one device can make the server hold or do: open connections
/// per address, acknowledgements per device.
@Suite struct ConnectionLimitTests {
    @Test func connectionsAreCountedPerAddressAndIPv6PerSlash64() throws {
        let counter = ConnectionCounter(limit: 2, exemptsLoopback: true)
        let first = try SocketAddress(ipAddress: "203.0.113.7", port: 1)
        let neighbour = try SocketAddress(ipAddress: "2001:db8:1:2::1", port: 1)
        let sameSubnet = try SocketAddress(ipAddress: "2001:db8:1:2:ffff::9", port: 2)
        let otherSubnet = try SocketAddress(ipAddress: "2001:db8:1:3::1", port: 1)
        let keys = [counter.admit(first), counter.admit(first)]
        #expect(keys.allSatisfy { $0 == "203.0.113.7" })
        #expect(counter.admit(first) == nil)
        #expect(counter.admit(neighbour) != nil && counter.admit(sameSubnet) != nil)
        #expect(counter.admit(sameSubnet) == nil, "one /64 is one address")
        #expect(counter.admit(otherSubnet) != nil)
        counter.release("203.0.113.7")
        #expect(counter.admit(first) != nil, "a closed connection frees its place")
        // Loopback (a local reverse proxy) is not counted unless the exemption is off.
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        for _ in 0..<10 { #expect(counter.admit(loopback) == "") }
        let strict = ConnectionCounter(limit: 1, exemptsLoopback: false)
        #expect(strict.admit(loopback) != nil && strict.admit(loopback) == nil)
    }

    @Test func anAddressHoldingItsShareOfConnectionsCannotOpenMore() async throws {
        try await TestServer.with(configure: {
            $0.maxConnectionsPerAddress = 3
            $0.connectionLimitExemptsLoopback = false
            // Far beyond the bound below, so a close within it is the limit's doing, never the
            // handshake deadline's, however loaded the machine running the suite is.
            $0.handshakeTimeoutSeconds = 120
        }) { server in
            // The attacker holds three idle connections (a trickling client looks the same).
            var held: [RawTCP]? = try (0..<3).map { _ in try RawTCP(port: server.port) }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            let extra = try RawTCP(port: server.port)
            #expect(await extra.waitForClose(seconds: 30))
            #expect(ContinuousClock.now - started < .seconds(30), "closed at once, not by the handshake deadline")
            #expect(held?.count == 3)
            // Released, the places are free again, and the server serves as before.
            held = nil
            try await Task.sleep(for: .milliseconds(500))
            let alice = try await TestUser.ready("alice", on: server)
            await alice.connect()
            try await alice.createGroup("g")
            #expect(try await alice.sendText("still here", to: "g").accepted?.seq == 1)
        }
    }

    @Test func acksPastTheDevicesBudgetAreRefusedAndSendingGoesOn() async throws {
        try await TestServer.with(configure: { $0.acksPerSecond = 1 }) { server in
            let alice = try await TestUser.ready("alice", on: server)
            await alice.connect()
            try await alice.createGroup("g")
            #expect(try await alice.sendText("one", to: "g").accepted?.seq == 1)
            let started = ContinuousClock.now
            for _ in 0..<12 { try alice.socket!.send(.ack(.init(group: "g", seq: 1))) }
            // The session handles a device's frames in order, so the answer to this send comes
            // after every refusal: its arrival ends the count, however loaded the machine is.
            #expect(try await alice.sendText("two", to: "g").accepted?.seq == 2, "sends have their own budget")
            let elapsed = ContinuousClock.now - started
            var refused = 0
            while let frame = await alice.nextFrame(timeout: .milliseconds(1)) {
                if frame.error?.code == .rateLimited { refused += 1 }
            }
            // A burst of 4 passes, plus one refill a second while the acks were handled (one
            // more for rounding); the rest are refused.
            let refills = Int((elapsed / .seconds(1)).rounded(.up)) + 1
            #expect(refused <= 8 && refused >= 8 - refills, "\(refused) refused in \(elapsed)")
            let group = try #require(try server.server.storage.group(named: "g")).id
            let device = try #require(
                try server.server.storage.device(withSignatureKey: alice.signatureKeys.publicKey.bytes)
            )
            #expect(try server.server.storage.membership(groupID: group, deviceID: device.id)?.ackedSeq == 1)
        }
    }
}
