import Testing

@testable import ParleyChat

@Suite struct LineEditorTests {
    func editor(_ text: String, cursor: Int? = nil) -> LineEditor {
        var editor = LineEditor()
        editor.insert(text)
        if let cursor {
            editor.perform(.home)
            for _ in 0..<cursor { editor.perform(.right) }
        }
        return editor
    }

    @Test func movesByCharacterWordAndLine() {
        var line = editor("hello big world")
        line.perform(.wordLeft)
        #expect(line.cursor == 10)
        line.perform(.wordLeft)
        #expect(line.cursor == 6)
        line.perform(.left)
        #expect(line.cursor == 5)
        line.perform(.wordRight)
        #expect(line.cursor == 9)
        line.perform(.home)
        #expect(line.cursor == 0)
        line.perform(.left)
        #expect(line.cursor == 0)
        line.perform(.end)
        #expect(line.cursor == 15)
        line.perform(.right)
        #expect(line.cursor == 15)
    }

    @Test func insertsAtTheCursor() {
        var line = editor("helo", cursor: 3)
        line.insert("l")
        #expect(line.line == "hello")
        #expect(line.cursor == 4)
    }

    @Test func deletesAndKillsAndYanks() {
        var line = editor("one two three", cursor: 7)
        line.perform(.deleteForward)
        #expect(line.line == "one twothree")
        line.perform(.deleteBackward)
        #expect(line.line == "one twthree")
        line.perform(.killToEnd)
        #expect(line.line == "one tw")
        line.perform(.yank)
        #expect(line.line == "one twthree")
        line.perform(.killToStart)
        #expect(line.line == "")
        line.perform(.yank)
        #expect(line.line == "one twthree")
        #expect(line.cursor == 11)
    }

    @Test func ctrlWCutsToTheBlankAltBackspaceToTheWord() {
        var line = editor("see foo.bar/baz")
        line.perform(.killWhitespaceWord)
        #expect(line.line == "see ")
        var other = editor("see foo.bar")
        other.perform(.killWordBackward)
        #expect(other.line == "see foo.")
        var forward = editor("see foo.bar", cursor: 3)
        forward.perform(.killWordForward)
        #expect(forward.line == "see.bar")
    }

    @Test func wideAndCombiningCharactersAreOneStepEach() {
        var line = editor("a漢🙂")
        line.perform(.left)
        line.perform(.deleteBackward)
        #expect(line.line == "a🙂")
        // A combining accent typed after its letter joins it.
        var accent = LineEditor()
        accent.insert("e")
        accent.insert("\u{301}")
        #expect(accent.text.count == 1)
        accent.perform(.deleteBackward)
        #expect(accent.line == "")
    }

    @Test func pastedTextKeepsLineBreaksAndDropsControls() {
        var line = LineEditor()
        line.insert("a\r\nb\rc\td\u{1B}[31me")
        #expect(line.line == "a\nb\nc d[31me")
    }

    @Test func upAndDownWalkTheHistoryAndKeepTheDraft() {
        var line = LineEditor()
        line.insert("first")
        _ = line.submit()
        line.insert("second")
        #expect(line.submit() == "second")
        line.insert("draft")
        line.perform(.historyPrevious)
        #expect(line.line == "second")
        line.perform(.historyPrevious)
        #expect(line.line == "first")
        line.perform(.historyPrevious)
        #expect(line.line == "first")
        line.perform(.historyNext)
        #expect(line.line == "second")
        line.perform(.historyNext)
        #expect(line.line == "draft")
        #expect(line.cursor == 5)
    }

    @Test func historyIsBoundedAndSkipsRepeatsAndBlanks() {
        var line = LineEditor()
        for index in 0..<(LineEditor.historyLimit + 10) {
            line.insert("line \(index)")
            _ = line.submit()
        }
        line.insert("   ")
        _ = line.submit()
        line.insert("line \(LineEditor.historyLimit + 9)")
        _ = line.submit()
        for _ in 0..<(LineEditor.historyLimit + 50) { line.perform(.historyPrevious) }
        #expect(line.line == "line 10")
        line.perform(.historyNext)
        #expect(line.line == "line 11")
    }

    @Test func tabCompletesAndCyclesThroughMatches() {
        var line = editor("/re")
        #expect(line.complete(from: ["/remove", "/help"]) == ["/remove"])
        #expect(line.line == "/remove ")
        line.insert("b")
        #expect(line.complete(from: ["bob", "bea", "alice"]) == ["bea", "bob"])
        #expect(line.line == "/remove bea")
        line.complete(from: ["bob", "bea", "alice"])
        #expect(line.line == "/remove bob")
        line.complete(from: ["bob", "bea", "alice"])
        #expect(line.line == "/remove bea")
        // Any other key ends the cycle.
        line.perform(.end)
        #expect(line.complete(from: ["zed"]) == [])
        #expect(line.line == "/remove bea")
    }

    @Test func completionWorksInTheMiddleOfTheLine() {
        var line = editor("hi al how are you", cursor: 5)
        line.complete(from: ["alice"])
        #expect(line.line == "hi alice  how are you")
        #expect(line.cursor == 9)
    }
}
