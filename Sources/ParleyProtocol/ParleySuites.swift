import MLS

/// The MLS cipher suites Parley groups use (RFC 9420 §17.1). Both sign with Ed25519, so one
/// device signature key serves a device in groups of either suite.
public enum ParleySuites {
    /// Every group before post-quantum ones, and still the default:
    /// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
    public static let standard = CipherSuite.mls128DHKEMX25519AES128GCMSHA256Ed25519
    /// `parley create --post-quantum` and `parley upgrade`: MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519
    /// (0x004D), whose HPKE KEM is X-Wing (ML-KEM-768 with X25519): group secrets stay secret
    /// against a future quantum computer; signatures (Ed25519) are not post-quantum.
    public static let postQuantum = CipherSuite.mls256XWingChaCha20Poly1305SHA256Ed25519
    /// The suites a device keeps KeyPackages of, and the only ones the server stores.
    public static let all = [standard, postQuantum]

    /// How a group's suite is shown to users.
    public static func label(_ suite: CipherSuite) -> String {
        switch suite {
        case postQuantum: "post-quantum"
        case standard: "classical"
        default: "suite \(suite.rawValue)"
        }
    }
}
