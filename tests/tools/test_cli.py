"""`tempo chat` and `tempo threads` as a user runs them: stdin, stdout, exit codes (two real processes
for the thread that continues; the rest through `tempo.tools.cli.main` in this process)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

FIRST_QUESTION = "Where is the square at the beginning?"  # asked by the cli_thread fixture
FOLLOW_UP = "and after that?"


def test_a_thread_continues_across_two_processes(cli_thread):
    assert cli_thread["id"] == "cli-thread-1" and cli_thread["stream"] == "cam"
    first, second = cli_thread["turns"]
    assert first["question"] == FIRST_QUESTION and first["standalone_question"] == FIRST_QUESTION
    assert second["question"] == FOLLOW_UP
    # The second process read the first turn back from Redis to rewrite the follow-up.
    assert second["standalone_question"] != FOLLOW_UP
    assert "square" in second["standalone_question"].lower()
    assert set(first) == {"question", "standalone_question", "answer", "citations"}


def test_chat_reads_questions_and_commands_from_a_pipe(tempo_main):
    lines = "What is in the picture?\n/history\n/threads\n/bogus\n/reset\n/quit\nnever asked\n"
    code, out, err = tempo_main("chat", "--stream", "cam", "--thread", "pipe-1", "--max-new-tokens", "8", stdin=lines)
    assert code == 0, err
    assert out.startswith("thread pipe-1 on stream 'cam'")
    assert "tempo> " in out and "citations: " in out and "evidence: " in out
    assert "1. you: What is in the picture?" in out  # /history
    assert "* pipe-1  1 turn" in out  # /threads marks the current thread
    assert "unknown command '/bogus'" in out
    assert "new thread " in out  # /reset
    code, out, _ = tempo_main("threads", "show", "pipe-1", "--json")
    assert [t["question"] for t in json.loads(out)["turns"]] == ["What is in the picture?"]  # /quit stopped it


def test_threads_lists_and_shows_threads(tempo_main, cli_thread):
    code, out, err = tempo_main("threads", "--json")
    assert code == 0, err
    threads = {t["id"]: t for t in json.loads(out)["threads"]}
    assert threads["cli-thread-1"]["stream"] == "cam" and threads["cli-thread-1"]["turns"] == 2
    _, table, _ = tempo_main("threads")
    header, *rows = table.splitlines()
    assert header.split() == ["ID", "STREAM", "TURNS", "LAST", "TURN", "TITLE"]
    row = next(r for r in rows if r.startswith("cli-thread-1 "))
    last = dt.datetime.fromtimestamp(threads["cli-thread-1"]["last_turn_at"]).strftime("%Y-%m-%d %H:%M:%S")
    assert row.split()[1:] == ["cam", "2", *last.split(), *FIRST_QUESTION.split()]  # title: the first question
    _, text, _ = tempo_main("threads", "show", "cli-thread-1")
    assert text.startswith("thread cli-thread-1 on stream 'cam': 2 turns")
    assert f"1. you: {FIRST_QUESTION}" in text and f"2. you: {FOLLOW_UP}" in text
    _, shown, _ = tempo_main("threads", "show", "cli-thread-1", "--json")
    assert json.loads(shown) == cli_thread


def test_threads_delete_removes_a_thread(tempo_main, conversations):
    thread = conversations.ask("cam", "What is on the left?")["thread_id"]
    code, out, _ = tempo_main("threads", "delete", thread)
    assert code == 0 and out.strip() == f"deleted thread {thread}"
    code, _, err = tempo_main("threads", "show", thread)
    assert code == 2 and f"no conversation thread '{thread}'" in err


def test_user_mistakes_are_one_line_errors(tempo_main):
    code, _, err = tempo_main("threads", "show", "no-such-thread")
    assert code == 2
    assert err.strip().splitlines() == [
        "tempo: error: no conversation thread 'no-such-thread' (see `tempo threads` for the existing ones)"
    ]
    code, _, err = tempo_main("chat", "--stream", "nope", stdin="hello\n")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("tempo: error: ") and "'nope'" in err
    code, _, err = tempo_main("chat", "--stream", "cam", "--thread", "bad id!")
    assert code == 2 and err.startswith("tempo chat: error: argument --thread: use 1-128 letters")
    assert len(err.strip().splitlines()) == 1


def test_model_text_is_shown_without_terminal_control_characters():
    from tempo.tools.commands.chat import printable

    assert printable("red\x1b[2J van\x00 at 0:12\n\tnext\x0c\x9b") == "red\\x1b[2J van\\x00 at 0:12\n\tnext\\x0c\\x9b"


def test_a_rewritten_question_from_the_model_is_shown_escaped_too():
    """The follow-up rewrite can be model text as well ("understood as: ..."): escaped like the answer."""
    import io

    from tempo.tools.commands.chat import print_turn_extras

    out = io.StringIO()
    result = {"question": "and then?", "standalone_question": "where\x1b]0;owned\x07 next?", "time_scope": None,
              "widened": False, "citations": [], "evidence": [], "streams": ["cam"]}  # fmt: skip
    print_turn_extras(result, out)  # type: ignore[arg-type]
    assert out.getvalue().splitlines()[0] == "  (understood as: where\\x1b]0;owned\\x07 next?)"


def test_chat_ctrl_c_cancels_the_answer_then_at_the_prompt_quits(conversations):
    """Ctrl-C arrives as KeyboardInterrupt in the main thread: here raised where the first piece of the
    first answer is written, then at the third prompt. The chat goes on after the first, ends on the second."""
    import io

    from tempo.agent.threads import new_thread_id
    from tempo.tools.commands.chat import chat_loop

    class Interrupting(io.StringIO):
        pieces = 0

        def write(self, text: str) -> int:
            if self.getvalue().endswith("tempo> ") and self.getvalue().count("tempo> ") == 1 and not self.pieces:
                self.pieces += 1
                raise KeyboardInterrupt
            return super().write(text)

    class Lines(io.StringIO):
        def readline(self, *args) -> str:  # type: ignore[override]
            line = super().readline()
            if not line:
                raise KeyboardInterrupt
            return line

    out = Interrupting()
    thread = new_thread_id()
    code = chat_loop(conversations, "cam", thread, Lines("Where is the square?\nWhere does it go?\n"), out)
    text = out.getvalue()
    assert code == 0
    assert "tempo> \n(cancelled; Ctrl-C again at the prompt quits)\n" in text
    assert text.count("tempo> ") == 2 and "citations:" in text.split("(cancelled")[1]  # the second was answered
    turns = conversations.show_thread(thread)["turns"]
    assert [t["question"] for t in turns] == ["Where does it go?"]  # the cancelled answer left no turn


def test_chat_ctrl_c_stops_the_model_at_its_next_token(live_service, monkeypatch):
    """A real SIGINT while the answer comes (raised in this main thread when its first piece is written,
    as a terminal's Ctrl-C arrives): the model stops generating within a few tokens, not at
    max_new_tokens (2000 here), no turn is left, and the chat goes on until Ctrl-C at the prompt."""
    import io
    import signal

    from tempo.agent.conversations import Conversations
    from tempo.agent.threads import new_thread_id
    from tempo.models.answer import AnswerStreamer
    from tempo.settings import AskSettings
    from tempo.tools.commands.chat import chat_loop

    tokens = [0]  # every token the model generates passes through the streamer
    put = AnswerStreamer.put

    def counting_put(self, value):
        tokens[0] += 1
        return put(self, value)

    monkeypatch.setattr(AnswerStreamer, "put", counting_put)
    conversations = Conversations(live_service, settings=AskSettings(max_new_tokens=2000))

    class CtrlC(io.StringIO):
        at_signal: int | None = None

        def write(self, text: str) -> int:
            if self.at_signal is None and self.getvalue().endswith("tempo> ") and text:
                self.at_signal = tokens[0]
                signal.raise_signal(signal.SIGINT)
            return super().write(text)

    class Lines(io.StringIO):
        def readline(self, *args) -> str:  # type: ignore[override]
            line = super().readline()
            if not line:
                raise KeyboardInterrupt  # Ctrl-C at the prompt: the chat ends
            return line

    out, thread = CtrlC(), new_thread_id()
    assert chat_loop(conversations, "cam", thread, Lines("Where is the square when Ctrl-C comes?\n"), out) == 0
    assert "tempo> " in out.getvalue() and "(cancelled; Ctrl-C again at the prompt quits)" in out.getvalue()
    assert out.at_signal is not None and tokens[0] - out.at_signal < 50, (out.at_signal, tokens[0])
    assert [t["turns"] for t in conversations.list_threads("cam") if t["id"] == thread] in ([], [0])  # no turn
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the answer's handler is gone


def test_a_one_shot_ask_and_a_thread_turn_print_the_same_result_for_the_same_first_question(tempo_main):
    question = "Which way does the square move at the start?"
    options = ("--stream", "cam", "--json", "--max-new-tokens", "8", "--top-k", "3")
    code, out, err = tempo_main("ask", *options, question)
    assert code == 0, err
    once = json.loads(out)
    code, out, err = tempo_main("ask", *options, "--thread", "json-shape-1", question)
    assert code == 0, err
    turn = json.loads(out)
    assert set(once) == set(turn)  # one TurnResult, whichever way it was asked
    assert (once["thread_id"], turn["thread_id"]) == (None, "json-shape-1")
    # The whole timeline (all 10 segments of "cam", anchors included), row for row.
    assert [r["index"] for r in once["segments"]] == list(range(10))
    assert once["segments"] == turn["segments"]
    assert {r["kind"] for r in once["segments"]} == {"candidate", "anchor"}  # K = 3: some segments are anchors
    assert once["answer"] == turn["answer"] and once["candidates"] == turn["candidates"]
    assert once["evidence"] == turn["evidence"]


def test_ask_across_streams_and_search_from_the_command_line(tempo_main):
    options = ("--json", "--max-new-tokens", "8", "--top-k", "3")
    code, out, err = tempo_main("ask", "--all-streams", *options, "Which camera shows the square?")
    assert code == 0, err
    across = json.loads(out)
    assert across["streams"] == ["cam"] and across["thread_id"] is None  # the memory's one stream, one-shot
    code, out, err = tempo_main("ask", "--streams", "cam", *options, "Which camera shows the square?")
    assert code == 0, err
    assert json.loads(out)["answer"] == across["answer"]
    code, out, err = tempo_main("search", "a square", "--top-k", "3", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert [m["stream"] for m in found["moments"]] == ["cam"] * 3
    scores = [m["score"] for m in found["moments"]]
    assert scores == sorted(scores, reverse=True)
    code, out, err = tempo_main("search", "a square", "--streams", "cam", "--top-k", "2")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["stream", "time", "segment", "score"] and len(out.splitlines()) == 3


def test_stream_choices_are_checked_in_one_line(tempo_main, capsys):
    with pytest.raises(SystemExit) as stopped:  # refused by `tempo ask` after parsing (argparse's usage error)
        tempo_main("ask", "--stream", "cam", "--streams", "cam", "q")
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "--stream and --streams exclude each other" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = tempo_main("ask", "--streams", ",", "q")
    assert code == 2 and "give at least one stream name" in err
    code, _, err = tempo_main("ask", "--streams", "cam,nope", "q")
    assert code == 2 and err.startswith("tempo: error: unknown stream 'nope'")
    code, _, err = tempo_main("search", "x", "--streams", "bad name!")
    assert code == 2 and len(err.strip().splitlines()) == 1
