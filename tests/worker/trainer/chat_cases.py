"""Conversations shared by the upload tests (tests/api) and the trainer's: one good, and
each bad kind with the reason both checks give."""

GOOD = {"messages": [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "add 1 2"},
    {"role": "assistant", "content": "3"},
]}

BAD_CASES = [
    ([{"content": "hi"}], "message 1 has no 'role'"),
    ([{"role": "bot", "content": "hi"}],
     "message 1 has unknown role 'bot'; roles are system, user, assistant"),
    ([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}],
     "has no assistant turn, so nothing to train on"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": ["h", "i"]}],
     "message 2 (assistant) has content that is a list, not a string"),
    ([{"role": "user"}, {"role": "assistant", "content": "x"}],
     "message 1 (user) has no 'content'"),
    ("hi", "must be a non-empty list of {role, content} messages"),
    ([], "must be a non-empty list of {role, content} messages"),
    (["hi"], "message 1 is str, not an object"),
]
