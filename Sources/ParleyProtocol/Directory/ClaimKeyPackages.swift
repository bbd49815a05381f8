import Foundation

extension API {
    /// The optional body of `POST /v1/users/{name}/keypackages/claim`: signature keys of devices
    /// the claimer already has in the group, whose KeyPackages it does not want. Skipping them
    /// before the claim keeps one-time KeyPackages from being spent for nothing.
    public struct ClaimKeyPackages: Codable, Sendable {
        public var skip: [Data]
        /// The cipher suite the KeyPackages must be of (RFC 9420 §10); absent means
        /// ``ParleySuites/standard``. The server hands out only KeyPackages of this suite.
        public var suite: UInt16?
        /// More than any account's devices; a longer list is refused.
        public static let maxSkipped = 1_000

        public init(skip: [Data], suite: UInt16? = nil) {
            self.skip = skip
            self.suite = suite
        }
    }
}
