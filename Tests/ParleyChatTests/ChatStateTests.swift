import Testing

@testable import ParleyChat
@testable import ParleyClient

/// The chat's behaviour from keys to worker requests and from worker events
/// to the screen, with no terminal and no network.
@Suite struct ChatStateTests {
    static let groups = [
        GroupSummary(
            name: "group1",
            members: ["alice", "bob"],
            admins: ["alice"],
            epoch: 1,
            lastSeq: 1,
            active: true,
            problem: nil
        ),
        GroupSummary(
            name: "group2",
            members: ["bob", "carol", "dave"],
            admins: ["bob"],
            epoch: 1,
            lastSeq: 1,
            active: true,
            problem: nil
        ),
    ]

    func state(group: String? = "group1") -> ChatState {
        var state = ChatState(username: "bob", group: group)
        _ = state.apply(
            .snapshot(ChatSnapshot(groups: Self.groups, viewed: group, history: [], changed: [])),
            columns: 80
        )
        return state
    }

    /// Types `text` key by key and presses Enter.
    func enter(_ text: String, into state: inout ChatState) -> [WorkerRequest] {
        for character in text { _ = state.handle(.character(character), rows: 24, columns: 80) }
        return state.handle(.enter, rows: 24, columns: 80)
    }

    @Test func aMessageIsHandedToTheWorkerAndTheLineClears() {
        var chat = state()
        #expect(enter("hello", into: &chat) == [.run(.message("hello"), group: "group1")])
        #expect(chat.screen.editor.line == "")
        #expect(chat.screen.working == ["sending"])
        _ = chat.apply(.finished(.message("hello"), .success(.sent)), columns: 80)
        #expect(chat.screen.working.isEmpty)
    }

    @Test func aPastedNewlineDoesNotSend() {
        var chat = state()
        #expect(chat.handle(.paste("one\ntwo"), rows: 24, columns: 80) == [])
        #expect(chat.screen.editor.line == "one\ntwo")
        #expect(chat.handle(.enter, rows: 24, columns: 80) == [.run(.message("one\ntwo"), group: "group1")])
    }

    @Test func aNonAdminIsRefusedBeforeTheNetwork() {
        var chat = state()
        #expect(enter("/remove alice", into: &chat) == [])
        #expect(chat.screen.notice == "Only a group admin may do that; the admin of group1 is alice.")
        #expect(enter("/add carol", into: &chat) == [])
        var admin = state(group: "group2")
        #expect(enter("/add alice", into: &admin) == [.run(.add(users: ["alice"]), group: "group2")])
        #expect(admin.screen.working == ["/add alice"])
    }

    @Test func commandsThatNeedAGroupSaySoOnTheList() {
        var chat = state(group: nil)
        #expect(enter("hi", into: &chat) == [])
        #expect(chat.screen.notice == ChatRefusal.noGroupOpen.description)
        #expect(enter("/members", into: &chat) == [])
        #expect(enter("/verify alice", into: &chat) == [.run(.verify(user: "alice"), group: nil)])
    }

    @Test func parseErrorsBecomeTheNotice() {
        var chat = state()
        #expect(enter("/switch", into: &chat) == [])
        #expect(chat.screen.notice == "/switch needs GROUP: type /switch GROUP.")
        #expect(enter("/nonsense", into: &chat) == [])
        #expect(chat.screen.notice.hasPrefix("There is no command /nonsense"))
        // An empty Enter does nothing and says nothing.
        chat.screen.notice = ""
        #expect(chat.handle(.enter, rows: 24, columns: 80) == [])
        #expect(chat.screen.notice == "")
    }

    @Test func switchingGroupsAsksTheWorkerForTheirHistory() {
        var chat = state()
        #expect(enter("/switch group2", into: &chat) == [.view("group2")])
        #expect(chat.screen.group == "group2")
        #expect(enter("/switch group9", into: &chat) == [])
        #expect(chat.screen.notice == ChatRefusal.notInGroup("group9").description)
        #expect(chat.handle(.alt("1"), rows: 24, columns: 80) == [.view("group1")])
        #expect(chat.handle(.alt("7"), rows: 24, columns: 80) == [])
        #expect(enter("/groups", into: &chat) == [.view(nil)])
        #expect(chat.screen.group == nil)
    }

    @Test func localCommandsNeverReachTheWorker() {
        var chat = state()
        #expect(enter("/help", into: &chat) == [])
        #expect(chat.screen.showingHelp)
        _ = chat.handle(.pageDown, rows: 24, columns: 80)
        #expect(chat.screen.scroll == 20)
        _ = chat.handle(.escape, rows: 24, columns: 80)
        #expect(!chat.screen.showingHelp)
        #expect(chat.screen.scroll == 0)
        #expect(enter("/quit", into: &chat) == [])
        #expect(!chat.running)
    }

    @Test func ctrlDDeletesOrQuitsAndCtrlCQuits() {
        var chat = state()
        _ = chat.handle(.character("a"), rows: 24, columns: 80)
        _ = chat.handle(.left, rows: 24, columns: 80)
        _ = chat.handle(.control("d"), rows: 24, columns: 80)
        #expect(chat.screen.editor.line == "")
        #expect(chat.running)
        _ = chat.handle(.control("d"), rows: 24, columns: 80)
        #expect(!chat.running)
        var other = state()
        _ = other.handle(.control("c"), rows: 24, columns: 80)
        #expect(!other.running)
    }

    @Test func finishedCommandsShowTheirOutcomeOrError() {
        var chat = state(group: "group2")
        _ = enter("/create team", into: &chat)
        #expect(
            chat.apply(.finished(.create(group: "team"), .success(.created("team"))), columns: 80) == [.view("team")]
        )
        #expect(chat.screen.group == "team")
        #expect(chat.screen.notice == "Created team.")
        _ = chat.apply(
            .finished(.remove(user: "x"), .failure(ClientError.noSuchMember("x", group: "team"))),
            columns: 80
        )
        #expect(chat.screen.notice == "x is not a member of team.")
        _ = chat.apply(.finished(.destroy, .success(.destroyed("team"))), columns: 80)
        #expect(chat.screen.group == nil)
    }

    @Test func tabCompletesCommandsGroupsAndMembers() {
        var chat = state(group: "group2")
        for character in "/sw" { _ = chat.handle(.character(character), rows: 24, columns: 80) }
        _ = chat.handle(.tab, rows: 24, columns: 80)
        #expect(chat.screen.editor.line == "/switch ")
        _ = chat.handle(.character("g"), rows: 24, columns: 80)
        _ = chat.handle(.tab, rows: 24, columns: 80)
        #expect(chat.screen.editor.line == "/switch group1")
        #expect(chat.screen.notice == "Tab again: group1 group2")
        _ = chat.handle(.tab, rows: 24, columns: 80)
        #expect(chat.screen.editor.line == "/switch group2")
        _ = chat.handle(.control("u"), rows: 24, columns: 80)
        for character in "/add " { _ = chat.handle(.character(character), rows: 24, columns: 80) }
        _ = chat.handle(.tab, rows: 24, columns: 80)
        // Only users known from other groups and not already in this one.
        #expect(chat.screen.editor.line == "/add alice ")
        _ = chat.handle(.control("u"), rows: 24, columns: 80)
        for character in "hi c" { _ = chat.handle(.character(character), rows: 24, columns: 80) }
        _ = chat.handle(.tab, rows: 24, columns: 80)
        #expect(chat.screen.editor.line == "hi carol ")
    }

    @Test func messagesArrivingWhileScrolledUpKeepTheViewAndCountWhatIsBelow() {
        var chat = state()
        let old = (1...30).map { HistoryEntry(seq: UInt64($0), time: 0, sender: "alice", kind: .text, text: "m\($0)") }
        _ = chat.apply(
            .snapshot(ChatSnapshot(groups: Self.groups, viewed: "group1", history: old, changed: [])),
            columns: 80
        )
        _ = chat.handle(.pageUp, rows: 10, columns: 80)
        #expect(chat.screen.scroll == 6)
        let new = old + [HistoryEntry(seq: 31, time: 0, sender: "alice", kind: .text, text: "new")]
        let arrived = ChatSnapshot(groups: Self.groups, viewed: "group1", history: new, changed: ["group1", "group2"])
        _ = chat.apply(.snapshot(arrived), columns: 80)
        #expect(chat.screen.scroll == 7)
        #expect(chat.screen.unseenBelow == 1)
        #expect(chat.screen.unread["group2"] == 1)
        #expect(chat.screen.unread["group1"] == nil)
        // A snapshot of a group no longer open does not replace the history.
        _ = chat.apply(
            .snapshot(ChatSnapshot(groups: Self.groups, viewed: "group2", history: [], changed: [])),
            columns: 80
        )
        #expect(chat.screen.history.count == 31)
    }
}
