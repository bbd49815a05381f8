/// `ParentNode` (RFC 9420 §7.1).
public struct ParentNode: Hashable, Sendable, TLSCodable {
    public var encryptionKey: HPKEPublicKey
    public var parentHash: [UInt8]
    public var unmergedLeaves: [LeafIndex]

    public init(encryptionKey: HPKEPublicKey, parentHash: [UInt8], unmergedLeaves: [LeafIndex] = []) {
        self.encryptionKey = encryptionKey
        self.parentHash = parentHash
        self.unmergedLeaves = unmergedLeaves
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(encryptionKey)
        try writer.writeOpaque(parentHash)
        try writer.writeVector(unmergedLeaves)
    }

    public init(from reader: inout TLSReader) throws {
        encryptionKey = try reader.read()
        parentHash = try reader.readOpaque()
        unmergedLeaves = try reader.readVector()
    }
}

/// `NodeType` (RFC 9420 §12.4.3.3).
public enum NodeType: UInt8, TLSEnum, Sendable {
    case leaf = 1
    case parent = 2
}

/// `Node` (RFC 9420 §12.4.3.3): a non-blank node of the ratchet tree.
public enum Node: Hashable, Sendable, TLSCodable {
    case leaf(LeafNode)
    case parent(ParentNode)

    public var encryptionKey: HPKEPublicKey {
        switch self {
        case .leaf(let leaf): leaf.encryptionKey
        case .parent(let parent): parent.encryptionKey
        }
    }

    public func encode(to writer: inout TLSWriter) throws {
        switch self {
        case .leaf(let leaf):
            try writer.write(NodeType.leaf)
            try writer.write(leaf)
        case .parent(let parent):
            try writer.write(NodeType.parent)
            try writer.write(parent)
        }
    }

    public init(from reader: inout TLSReader) throws {
        switch try reader.read(NodeType.self) {
        case .leaf: self = .leaf(try reader.read())
        case .parent: self = .parent(try reader.read())
        }
    }
}

/// `UpdatePathNode` (RFC 9420 §7.6): a new public key on the committer's
/// direct path and its path secret encrypted to each node of the copath
/// child's resolution.
public struct UpdatePathNode: Hashable, Sendable, TLSCodable {
    public var encryptionKey: HPKEPublicKey
    public var encryptedPathSecret: [HPKECiphertext]

    public init(encryptionKey: HPKEPublicKey, encryptedPathSecret: [HPKECiphertext]) {
        self.encryptionKey = encryptionKey
        self.encryptedPathSecret = encryptedPathSecret
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(encryptionKey)
        try writer.writeVector(encryptedPathSecret)
    }

    public init(from reader: inout TLSReader) throws {
        encryptionKey = try reader.read()
        encryptedPathSecret = try reader.readVector()
    }
}

/// `UpdatePath` (RFC 9420 §7.6).
public struct UpdatePath: Hashable, Sendable, TLSCodable {
    public var leafNode: LeafNode
    public var nodes: [UpdatePathNode]

    public init(leafNode: LeafNode, nodes: [UpdatePathNode]) {
        self.leafNode = leafNode
        self.nodes = nodes
    }

    public func encode(to writer: inout TLSWriter) throws {
        try writer.write(leafNode)
        try writer.writeVector(nodes)
    }

    public init(from reader: inout TLSReader) throws {
        leafNode = try reader.read()
        nodes = try reader.readVector()
    }
}
