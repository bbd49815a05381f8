import Testing

@testable import ParleyServer

/// The server suites' tests of ordering, epochs, quotas, devices and restarts, run again with the
/// real server on PostgreSQL (`StorageKind.current`): the same assertions, another storage.
@Suite(.serialized, .storageThreads) struct PostgresServerTests {
    private func onPostgres(_ body: () async throws -> Void) async throws {
        _ = try TestPostgres.baseURL()  // fails with how to get PostgreSQL when it is missing
        try await StorageKind.$current.withValue(.postgres) { try await body() }
    }

    @Test func orderAndMembership() async throws {
        try await onPostgres {
            try await ServerTests().aGroupAddsTalksAndRemoves()
            try await ServerTests().reconnectingReplaysWelcomesAndMessagesThenSaysReplayFinished()
            try await HostileMemberTests().aRemovedDeviceReceivesNothingLaterAndWrappedLeavesAreRefused()
        }
    }

    @Test func epochs() async throws {
        try await onPostgres {
            try await ServerTests().ofTwoCommitsForOneEpochTheSecondGetsWrongEpoch()
            try await HostileMemberTests().aPrivateMessageAtTheLastEpochIsRefusedAndTheServerLives()
            try await HostileMemberTests().proposalsPerEpochAreBoundedAndNotWrittenIntoTheStoredState()
        }
    }

    @Test func quotasAccountsAndKeyPackages() async throws {
        try await onPostgres {
            try await HostileMemberTests().storageQuotasPerUserAndPerGroupRefuseClearly()
            try await ServerTests().accountsRegisterLogInAndReportDistinctErrors()
            try await ServerTests().keyPackagesAreValidatedAndNeverHandedOutTwice()
        }
    }

    @Test func devices() async throws {
        try await onPostgres {
            try await DevicesServerTests().onlyListedDevicesLogInAndTheListIsServedUnchanged()
            try await DevicesServerTests().revokingAConnectedDeviceCutsItOffAtOnce()
            try await DevicesServerTests().addsOfUnlistedOrForeignDevicesAreRefused()
        }
    }

    @Test func echoesRestartsAndDestroy() async throws {
        try await onPostgres {
            try await EchoAndResendTests().aResendOfAStoredIDGetsTheStoredEchoAndNoSecondEntry()
            try await ServerTests().aRestartKeepsAccountsGroupsLogAndCursors()
            try await ServerTests().anAdminDestroysAGroupAndMembersAreTold()
        }
    }
}
