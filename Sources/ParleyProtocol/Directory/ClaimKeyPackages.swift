import Foundation

extension API {
    /// The optional body of `POST /v1/users/{name}/keypackages/claim`: signature keys of devices
    /// the claimer already has in the group, whose KeyPackages it does not want. Skipping them
    /// before the claim keeps one-time KeyPackages from being spent for nothing.
    public struct ClaimKeyPackages: Codable, Sendable {
        public var skip: [Data]
        /// More than any account's devices; a longer list is refused.
        public static let maxSkipped = 1_000

        public init(skip: [Data]) { self.skip = skip }
    }
}
