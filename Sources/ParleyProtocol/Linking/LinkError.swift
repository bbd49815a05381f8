/// Why linking a device failed, each case with a sentence for the person at the keyboard.
/// Callers match on the case, never on the text.
public enum LinkError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The typed code is not 28 characters of the code alphabet.
    case malformedCode
    /// The request's check digits differ from the code's: the server (or a typo) changed it.
    case codeMismatch
    /// A field of a link request has the wrong shape.
    case malformedRequest(Field)
    /// The request belongs to another account than the approving device's.
    case otherAccount(String)
    /// The bundle could not be opened with this device's key: sealed to another device, or damaged.
    case bundleNotForThisDevice
    /// The bundle opened but does not decode (truncated, trailing bytes, a bound exceeded).
    case malformedBundle
    /// The bundle names another recipient or another link request than this device's.
    case bundleForAnotherRequest
    /// The bundle's signature does not verify with the key that claims to have sent it.
    case bundleSignatureInvalid
    /// The bundle's sender is not a device of this account in the groups it speaks for.
    case bundleSenderUnknown
    /// The bundle would exceed a bound (lines per group, groups, bytes).
    case bundleTooLarge
    /// This home has no link in progress (run `parley link` first).
    case noLinkInProgress
    /// This home is already a device of an account; a new device links from a new home.
    case homeInUse
    /// The bundle's account identity does not sign the account's device list, or the list does
    /// not name the bundle's sender or this device: the server or a stranger made the bundle.
    case bundleIdentityMismatch
    /// The bundle does not carry the secret of this device's code: no device the user typed the
    /// code into made it (the server, or someone who saw only the lookup id). The link is ended.
    case linkSecretMismatch
    /// The request expired (by this device's clock) before it was approved.
    case requestExpired

    public enum Field: String, Sendable, Equatable {
        case username, deviceName, signatureKey, hpkeKey, nonce
    }

    public var description: String {
        switch self {
        case .malformedCode:
            "That is not a link code; type the 28 characters the new device shows, e.g. "
                + "7KQ2-MX4P-93TD-R8VW-2C5N-KJ7A-Q3XE."
        case .codeMismatch:
            "The code does not match the request the server returned: the server or a typo changed the new "
                + "device's keys. Nothing was approved; check the code, or start `parley link` again."
        case .malformedRequest(let field):
            "The link request's \(field.rawValue) is not valid; start `parley link` again on the new device."
        case .otherAccount(let name):
            "That link request is for the account \(name), not this one; approve it from that account's device."
        case .bundleNotForThisDevice:
            "The history bundle was not sealed to this device's key; it was ignored."
        case .malformedBundle:
            "The history bundle is damaged or truncated; it was ignored."
        case .bundleForAnotherRequest:
            "The history bundle answers another device's or an older link request; it was ignored."
        case .bundleSignatureInvalid:
            "The history bundle's signature does not verify; it was ignored."
        case .bundleSenderUnknown:
            "The history bundle was not sent by one of your own devices in those groups; it was ignored."
        case .bundleTooLarge:
            "The history bundle is larger than Parley accepts; approve again with fewer messages per group."
        case .noLinkInProgress:
            "This home has no link in progress; run `parley link` on the new device first."
        case .homeInUse:
            "This home is already a device of an account; link the new device from a new home (--home DIR)."
        case .bundleIdentityMismatch:
            "The history bundle's account identity does not match your account's device list; it was ignored."
        case .linkSecretMismatch:
            "The history bundle does not carry this device's link code, so none of your devices made it: the "
                + "server or someone else sent it. Nothing in it was used and this link is ended; link again "
                + "from a new home (--home DIR) and approve the new code on your own device."
        case .requestExpired:
            "That link request has expired; run `parley link` again on the new device for a new code."
        }
    }
}
