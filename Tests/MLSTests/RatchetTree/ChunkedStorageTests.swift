import Testing

@testable import MLS

/// The chunked storage behind `RatchetTree` must behave exactly like the flat
/// array and dictionary it replaced; these tests run the same random
/// operations on both and compare after every step.
@Suite struct ChunkedStorageTests {
    let suite = try! CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519.provider()

    /// SplitMix64: a small seeded generator so failures reproduce.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func chunkedArrayMatchesAnArrayThroughAppendsSetsAndRemovals() {
        var random = SeededGenerator(state: 7)
        var chunked = ChunkedArray<Int>()
        var model: [Int] = []
        for step in 0..<5_000 {
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let extra = Int.random(in: 0..<150, using: &random)
                chunked.append(repeating: step, count: extra)
                model += [Int](repeating: step, count: extra)
            case 4..<8 where !model.isEmpty:
                let position = Int.random(in: 0..<model.count, using: &random)
                chunked[position] = -step
                model[position] = -step
            case 8 where !model.isEmpty:
                let k = Int.random(in: 0...model.count, using: &random)
                chunked.removeLast(k)
                model.removeLast(k)
            default:
                break
            }
            #expect(chunked.count == model.count)
            #expect(Array(chunked) == model)
        }
    }

    @Test func aChangedCopyLeavesTheOriginalAsItWas() {
        var original = ChunkedArray(0..<1_000)
        var copy = original
        copy[0] = -1
        copy[999] = -999
        copy.append(1_000)
        #expect(Array(original) == Array(0..<1_000))
        #expect(copy[0] == -1 && copy[999] == -999 && copy.count == 1_001)
        original.removeLast(500)
        #expect(copy.count == 1_001 && copy[998] == 998)
    }

    @Test func shardedDictionaryMatchesADictionaryAndCopiesAreIndependent() {
        var random = SeededGenerator(state: 11)
        var sharded = ShardedDictionary<Int, Int>()
        var model: [Int: Int] = [:]
        var snapshot = (sharded, model)
        for step in 0..<20_000 {
            let key = Int.random(in: 0..<2_000, using: &random)
            let value: Int? = Bool.random(using: &random) ? step : nil
            sharded[key] = value
            model[key] = value
            #expect(sharded[key] == model[key])
            if step % 1_000 == 0 {
                #expect((0..<2_000).allSatisfy { sharded[$0] == model[$0] })
                #expect((0..<2_000).allSatisfy { snapshot.0[$0] == snapshot.1[$0] })
                snapshot = (sharded, model)
            }
        }
    }

    /// The tree's running counts (members, credential types in use and
    /// supported by all) and its leftmost-blank-leaf hint agree with a scan.
    @Test func treeBookkeepingAgreesWithAScanThroughAddsAndRemoves() throws {
        var random = SeededGenerator(state: 3)
        var tree = try RatchetTree(suite, firstLeaf: TestMember.placeholderLeaf(0))
        var next = 1
        for _ in 0..<600 {
            let members = tree.members
            if members.count > 1, Int.random(in: 0..<3, using: &random) == 0 {
                try tree.remove(members[Int.random(in: 1..<members.count, using: &random)].index)
            } else {
                let expected =
                    (0..<tree.leafCount.rawValue).first { tree.leafNode(at: LeafIndex($0)) == nil }
                    ?? tree.leafCount.rawValue
                var leaf = TestMember.placeholderLeaf(next)
                if next % 5 == 0 { leaf.capabilities.credentials = [.basic, CredentialType(rawValue: 0xF000)] }
                next += 1
                #expect(try tree.add(leaf) == LeafIndex(expected))
            }
            let leaves = tree.members.map(\.leaf)
            #expect(tree.memberCount == leaves.count)
            #expect(tree.credentialTypesInUse == Set(leaves.map(\.credential.credentialType)))
            let supportedByAll = leaves.map { Set($0.capabilities.credentials) }.reduce(nil) {
                (all: Set<CredentialType>?, these) in all.map { $0.intersection(these) } ?? these
            }
            #expect(tree.credentialTypesSupportedByAll == supportedByAll)
        }
    }
}

extension ChunkedStorageTests {
    /// resolution() and filteredDirectPath() use per-subtree counts to skip
    /// empty subtrees; they must equal the definitions of §4.1.1 and §4.1.2.
    @Test func countedResolutionsMatchTheDefinitionsAfterRandomChanges() throws {
        var random = SeededGenerator(state: 5)
        var tree = try RatchetTree(suite, firstLeaf: TestMember.placeholderLeaf(0))
        var next = 1
        func definedResolution(_ node: NodeIndex) -> [NodeIndex] {
            switch tree[node] {
            case .leaf: return [node]
            case .parent(let parent): return [node] + parent.unmergedLeaves.map(\.nodeIndex)
            case nil:
                guard let left = node.left, let right = node.right else { return [] }
                return definedResolution(left) + definedResolution(right)
            }
        }
        for step in 0..<300 {
            let members = tree.members
            switch Int.random(in: 0..<4, using: &random) {
            case 0 where members.count > 1:
                try tree.remove(members[Int.random(in: 1..<members.count, using: &random)].index)
            case 1:
                // A parent key somewhere above a member, as an UpdatePath leaves.
                let leaf = members[Int.random(in: 0..<members.count, using: &random)].index
                let path = tree.leafCount.directPath(of: leaf.nodeIndex)
                if !path.isEmpty {
                    let node = path[Int.random(in: 0..<path.count, using: &random)]
                    tree.set(
                        node,
                        .parent(
                            ParentNode(
                                encryptionKey: HPKEPublicKey([3] + withUnsafeBytes(of: UInt64(step), Array.init)),
                                parentHash: []
                            )
                        )
                    )
                }
            default:
                try tree.add(TestMember.placeholderLeaf(next))
                next += 1
            }
            try tree.rehash()
            for position in 0..<tree.leafCount.nodeCount {
                let node = NodeIndex(position)
                #expect(tree.resolution(of: node) == definedResolution(node))
                #expect(tree.hasNonBlankDescendant(node) == !definedResolution(node).isEmpty)
            }
        }
    }
}
