"""What a new password must be: long enough, and not one that is commonly used or easily guessed (NIST SP 800-63B).

zxcvbn (its word lists about 12 MB of a server's memory) is imported when a new password is first checked, not by
every process that reads this module's limits.
"""

from __future__ import annotations

import re
from functools import cache

# NIST SP 800-63B asks for at least 8 characters (15 when a password is the only factor, in revision 4); this
# project keeps its own minimum of 10. At least 64 must be allowed; the bound only keeps a request's work small.
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
# zxcvbn's score of a password (0-4) is its estimate of the guesses needed: 3 is at least 10^8, "safely
# unguessable: moderate protection from an offline slow-hash scenario" (Argon2id here). A lower score (a common
# password, a word with a year and a symbol, a repeated or sequential pattern) is refused: NIST's "commonly used,
# expected, or compromised values", and score 2 is too little for accounts that open health records.
MIN_PASSWORD_SCORE = 3
SERVICE_WORDS = ("needle outcomes", "needleoutcomes", "dry needling", "dryneedling")


def check_password_strength(password: str, *, username: str = "") -> None:
    """Raise ValueError naming the problem if a new password is too weak (NIST SP 800-63B's rules)."""
    if not password.strip():
        raise ValueError("password: must not be blank")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password: must be at most {MAX_PASSWORD_LENGTH} characters")
    folded = password.strip().lower()
    bare = _letters_and_digits(folded)
    if username and bare == _letters_and_digits(username.strip().lower()):
        raise ValueError("password: must not be the username")
    if folded in SERVICE_WORDS or bare in map(_letters_and_digits, SERVICE_WORDS):
        raise ValueError("password: must not be the name of this service")
    if folded in _common_passwords() or bare in _common_passwords():
        raise ValueError("password: is one of the most common passwords; choose another")
    from zxcvbn import zxcvbn

    estimate = zxcvbn(password[:72], user_inputs=[username, *SERVICE_WORDS] if username else list(SERVICE_WORDS))
    if estimate["score"] < MIN_PASSWORD_SCORE:
        feedback = estimate["feedback"]
        advice = " ".join([feedback["warning"], *feedback["suggestions"]]).strip()
        raise ValueError("password: too easy to guess. " + (advice or "A few unrelated words are better."))


def _letters_and_digits(text: str) -> str:
    return re.sub(r"[\W_]+", "", text)


@cache
def _common_passwords() -> frozenset[str]:
    """Return zxcvbn's list of the 30,000 most common passwords (from leaked password sets), lower-case."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])
