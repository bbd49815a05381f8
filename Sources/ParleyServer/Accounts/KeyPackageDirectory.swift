import Foundation
import MLS
import ParleyProtocol

/// The KeyPackage directory: devices publish, members claim one per device.
///
/// Claims are limited per claiming device and per claiming account (refused past it), and
/// per target user across all claimers (finding 15): past that budget a claim still
/// succeeds but hands out the target's last-resort KeyPackages (RFC 9420 §16.8), so a
/// stranger with many devices cannot drain the one-time ones, and adding the target still works.
final class KeyPackageDirectory: Sendable {
    let storage: any ServerStorage
    let configuration: ServerConfiguration
    // Kept in storage, so every node shares them (a claim drains a one-time package everywhere).
    private let claimsPerDevice: SharedRateLimiter
    private let claimsPerAccount: SharedRateLimiter
    private let oneTimeClaimsPerTarget: SharedRateLimiter
    static let maxStockPerDevice = 500

    init(storage: any ServerStorage, configuration: ServerConfiguration) {
        self.storage = storage
        self.configuration = configuration
        let perTarget = configuration.keyPackageClaimsPerHourPerTarget
        claimsPerDevice = SharedRateLimiter("claims-device", .perHour(capacity: 60, 60), storage: storage)
        claimsPerAccount = SharedRateLimiter("claims-account", .perHour(capacity: 120, 120), storage: storage)
        oneTimeClaimsPerTarget = SharedRateLimiter(
            "one-time-claims-target",
            .perHour(capacity: perTarget, perTarget),
            storage: storage
        )
    }

    /// Validates each KeyPackage (signature, suite, credential naming this
    /// device's user, signature key of this device) before storing it.
    func upload(_ request: API.UploadKeyPackages, from device: DeviceRecord) throws -> API.KeyPackageStock {
        guard request.keyPackages.count <= 100 else {
            throw ErrorBody(.tooLarge, "Upload at most 100 key packages at a time.")
        }
        // Unclaimed packages are bounded per device too, so uploads cannot fill the disk.
        let unclaimed = try ParleySuites.all.reduce(0) {
            $0 + (try storage.availableKeyPackages(deviceID: device.id, suite: $1.rawValue))
        }
        guard unclaimed + request.keyPackages.count <= Self.maxStockPerDevice else {
            throw ErrorBody(.tooLarge, "A device may keep at most \(Self.maxStockPerDevice) unclaimed key packages.")
        }
        var stored: [StoredKeyPackage] = []
        for (data, lastResort) in request.keyPackages.map({ ($0, false) })
            + (request.lastResort.map { [($0, true)] } ?? [])
        {
            guard case .keyPackage(let keyPackage) = try? MLSMessage(tlsEncoded: [UInt8](data)) else {
                throw ErrorBody(.invalidKeyPackage, "A key package could not be decoded.")
            }
            // Only Parley's suites: a pool per suite is kept, and no group of another one exists.
            guard ParleySuites.all.contains(keyPackage.cipherSuite) else {
                throw ErrorBody(.invalidKeyPackage, "A key package is of a cipher suite Parley does not use.")
            }
            do {
                try keyPackage.validate()
            } catch {
                throw ErrorBody(.invalidKeyPackage, "A key package is invalid: \(error).")
            }
            guard keyPackage.leafNode.signatureKey.bytes == device.signatureKey,
                ParleyGroupPolicy.username(of: keyPackage.leafNode.credential) == device.userName
            else {
                throw ErrorBody(.invalidKeyPackage, "A key package does not belong to this device.")
            }
            stored.append(
                StoredKeyPackage(
                    reference: try keyPackage.reference(keyPackage.cipherSuite.provider()),
                    data: [UInt8](data),
                    lastResort: lastResort
                )
            )
        }
        do {
            try storage.addKeyPackages(deviceID: device.id, stored)
        } catch {
            throw ErrorBody(.invalidKeyPackage, "A key package was uploaded before.")
        }
        return try stock(of: device)
    }

    /// The device's unclaimed one-time KeyPackages of `suite`.
    func stock(of device: DeviceRecord, suite: CipherSuite = ParleySuites.standard) throws -> API.KeyPackageStock {
        API.KeyPackageStock(
            available: try storage.availableKeyPackages(deviceID: device.id, suite: suite.rawValue),
            lowWatermark: configuration.keyPackageLowWatermark
        )
    }

    /// One KeyPackage of `suite` for every device of `username` whose key is not in `skipping`:
    /// one-time ones within the target's hourly budget, last-resort ones past it. A device with
    /// none of that suite is left out; none at all is `noKeyPackages`.
    func claim(
        username: String,
        by claimer: DeviceRecord,
        skipping: Set<[UInt8]> = [],
        suite: CipherSuite = ParleySuites.standard
    ) throws
        -> API.ClaimedKeyPackages
    {
        guard ParleySuites.all.contains(suite) else {
            throw ErrorBody(.malformedRequest, "Parley groups do not use \(suite).")
        }
        guard try claimsPerDevice.allow("device:\(claimer.id)"), try claimsPerAccount.allow("account:\(claimer.userID)")
        else {
            throw ErrorBody(.rateLimited)
        }
        guard let user = try storage.user(named: username) else { throw ErrorBody(.userNotFound) }
        let oneTime = try oneTimeClaimsPerTarget.allow("target:\(user.id)")
        // Only devices the account's signed list names (clients check that list themselves too).
        let listed = ListedDevices(storage: storage)
        let devices = try storage.devices(ofUser: user.id).filter {
            try !skipping.contains($0.signatureKey) && listed.isListed(user: username, signatureKey: $0.signatureKey)
        }
        let entries = try devices.compactMap { device in
            let package =
                oneTime
                ? try storage.claimKeyPackage(deviceID: device.id, suite: suite.rawValue)
                : try storage.lastResortKeyPackage(deviceID: device.id, suite: suite.rawValue)
            return package.map { API.ClaimedKeyPackages.Entry(deviceID: device.id, keyPackage: Data($0.data)) }
        }
        guard !entries.isEmpty else { throw ErrorBody(.noKeyPackages) }
        return API.ClaimedKeyPackages(username: username, keyPackages: entries)
    }
}
