import Testing

@testable import ParleyChat

@Suite struct ChatCommandTests {
    @Test(arguments: [
        ("hello there", ChatCommand.message("hello there")),
        ("  padded  ", .message("padded")),
        ("//slash at the start", .message("/slash at the start")),
        ("/switch group1", .switchTo(group: "group1")),
        ("/groups", .groups),
        ("/create 漢字", .create(group: "漢字")),
        ("/members", .members),
        ("/add bob carol", .add(users: ["bob", "carol"])),
        ("/add bob,carol  dave", .add(users: ["bob", "carol", "dave"])),
        ("/remove bob", .remove(user: "bob")),
        ("/leave", .leave),
        ("/destroy", .destroy),
        ("/upgrade", .upgrade),
        ("/verify alice", .verify(user: "alice")),
        ("/help", .help),
        ("/quit", .quit),
        ("/exit", .quit),
        ("line one\nline two", .message("line one\nline two")),
    ])
    func parses(_ line: String, _ expected: ChatCommand) throws {
        #expect(try ChatCommand.parse(line) == expected)
    }

    @Test func typedErrorsReadAsSentences() throws {
        #expect(throws: ChatParseError.empty) { try ChatCommand.parse("   ") }
        #expect(throws: ChatParseError.unknownCommand("/kick")) { try ChatCommand.parse("/kick bob") }
        let switchSpec = try #require(CommandSpec.named("/switch"))
        #expect(throws: ChatParseError.missingArgument(switchSpec)) { try ChatCommand.parse("/switch") }
        #expect(throws: ChatParseError.extraArguments(switchSpec)) { try ChatCommand.parse("/switch a b") }
        let members = try #require(CommandSpec.named("/members"))
        #expect(throws: ChatParseError.extraArguments(members)) { try ChatCommand.parse("/members now") }
        #expect(ChatParseError.missingArgument(switchSpec).description == "/switch needs GROUP: type /switch GROUP.")
        #expect(
            ChatParseError.unknownCommand("/kick").description
                == "There is no command /kick; /help lists them, Tab completes them."
        )
        #expect(
            ChatParseError.extraArguments(members).description == "/members takes no arguments: type /members."
        )
    }

    @Test func everyCommandAndEveryKeyIsInTheHelp() {
        let help = ChatScreen.helpLines.joined(separator: "\n")
        for spec in CommandSpec.all {
            #expect(help.contains(spec.usage), "\(spec.name) is missing from /help")
            for alias in spec.aliases { #expect(help.contains(alias)) }
        }
        for binding in KeyBinding.all {
            #expect(help.contains(binding.label), "\(binding.label) is missing from /help")
        }
        for label in ["Ctrl+A", "Ctrl+E", "Ctrl+B", "Ctrl+F", "Ctrl+U", "Ctrl+K", "Ctrl+W", "Alt+B", "Alt+F", "Delete"]
        {
            #expect(help.contains(label))
        }
    }
}
