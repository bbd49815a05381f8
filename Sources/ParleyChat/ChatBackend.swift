import ParleyClient

/// What the chat's worker asks of the client: ``ParleyClient`` in the app, a scripted
/// stand-in in the chat's unit tests (which then need no server).
public protocol ChatBackend: Sendable {
    func sync() async throws
    func pump(timeout: Duration) async throws -> Set<String>
    /// The connection and how many frames arrived on it (read before a pump, waited past after).
    func arrivalMark() async -> ArrivalMark
    /// Returns once a frame arrived after `mark`, the connection changed, `timeout` passed or
    /// the task is cancelled; takes no frame, so it is safe to cancel.
    func waitForArrival(after mark: ArrivalMark, timeout: Duration) async
    func history(_ name: String) async throws -> [HistoryEntry]
    func groupSummaries() async -> [GroupSummary]
    func send(_ text: String, to name: String) async throws -> SendOutcome
    func createGroup(_ name: String) async throws
    func members(_ name: String) async throws -> [String]
    func add(_ users: [String], to name: String) async throws
    func remove(_ user: String, from name: String) async throws
    func leave(_ name: String) async throws
    func destroy(_ name: String) async throws
    /// `/upgrade`: `parley upgrade` (GroupEngine+Upgrade.swift), which checks everything itself.
    func upgrade(_ name: String) async throws
    func verify(_ user: String) async throws -> (number: String, changed: Bool)
    /// `/devices` (ParleyClient+Devices.swift).
    func devices() async throws -> [DeviceInfo]
    /// `/devices approve CODE` (ParleyClient+Linking.swift).
    func approveLink(code: String, deviceName: String, messagesPerGroup: Int) async throws -> LinkApproval
}

extension ParleyClient: ChatBackend {}
