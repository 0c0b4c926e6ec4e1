"""Small tokenizers made the way real ones are, for tests that must not download anything.

- `write_nanochat_tokenizer`: trained like nanochat trains its own (rustbpe learns the merges,
  a tiktoken Encoding is built from them with the nine chat tokens numbered after the merges),
  then pickled as nanochat saves it, to ``tokenizer.pkl``;
- `write_bytes_tokenizer`: a tiktoken Encoding with no merges at all, so a text's ids are its
  UTF-8 bytes and renders can be checked by hand;
- `write_hf_tokenizer`: a byte-level BPE ``tokenizer.json`` trained with Hugging Face
  ``tokenizers``, whose only special token is ``<|endoftext|>``.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

from taskcli.training.tokenizer import CHAT_TOKENS

# The split pattern nanochat trains with: GPT-4's, with numbers in groups of at most two.
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,2}| ?[^\s\p{L}\p{N}]++[\r\n]*|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s+"""
)
MERGES = 300
WORD_LIST = (
    "the a of to and in is it you that he was for on are with as his they be at one have this "
    "from or had by word but what some we can out other were all there when up use your how "
    "said an each she which do their time if will way about many then them write would like "
    "so these her long make thing see him two has look more day could go come did number sound "
    "no most people my over know water than call first who may down side been now find any "
    "new work part take get place made live where after back little only round man year came "
    "show every good me give our under name very through just form sentence great think say "
    "help low line differ turn cause much mean before move right boy old too same tell does "
    "set three want air well also play small end put home read hand port large spell add even "
    "land here must big high such follow act why ask men change went light kind off need house "
    "picture try us again animal point mother world near build self earth father"
)


def training_text(size: int = 8_000, seed: int = 0) -> str:
    """A few KB of English-like text with numbers, punctuation, code and a little Unicode."""
    rng = random.Random(seed)
    words = WORD_LIST.split()
    extras = ("42", "3.14", "x = y + 1", "print(2 ** 10)", "café", "naïve", "日本", "—", "?", "!")
    pieces: list[str] = []
    while sum(map(len, pieces)) < size:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randrange(4, 14)))
        if rng.random() < 0.3:
            sentence += " " + rng.choice(extras)
        pieces.append(sentence.capitalize() + rng.choice((". ", ".\n", "? ", "!\n\n")))
    return "".join(pieces)


def _chat_specials(offset: int) -> dict[str, int]:
    return {name: offset + i for i, name in enumerate(CHAT_TOKENS)}


def write_nanochat_tokenizer(folder: Path) -> Path:
    """A nanochat tokenizer folder: rustbpe merges + tiktoken Encoding, pickled."""
    import rustbpe
    import tiktoken

    trainer = rustbpe.Tokenizer()
    text = training_text()
    trainer.train_from_iterator(
        iter(text.splitlines(keepends=True)), 256 + MERGES, pattern=SPLIT_PATTERN
    )
    ranks = {bytes(token): rank for token, rank in trainer.get_mergeable_ranks()}
    encoding = tiktoken.Encoding(
        name="rustbpe",
        pat_str=trainer.get_pattern(),
        mergeable_ranks=ranks,
        special_tokens=_chat_specials(len(ranks)),
    )
    return _pickle(encoding, folder)


def write_bytes_tokenizer(folder: Path, *, chat_tokens: bool = True) -> Path:
    """A merge-free tiktoken Encoding (ids = UTF-8 bytes), pickled as nanochat pickles one."""
    import tiktoken

    encoding = tiktoken.Encoding(
        name="bytes",
        pat_str=SPLIT_PATTERN,
        mergeable_ranks={bytes([b]): b for b in range(256)},
        special_tokens=_chat_specials(256) if chat_tokens else {},
    )
    return _pickle(encoding, folder)


def _pickle(encoding: object, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "tokenizer.pkl", "wb") as out:
        pickle.dump(encoding, out)
    return folder


def write_hf_tokenizer(folder: Path, *, plain_added: tuple[str, ...] = ()) -> Path:
    """A byte-level BPE tokenizer.json with <|endoftext|> as its one special token; the
    `plain_added` strings are added as ordinary (not special) added tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(byte_fallback=True, unk_token=None, fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=256 + 1 + MERGES,
        min_frequency=0,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
    )
    tokenizer.train_from_iterator(training_text().splitlines(keepends=True), trainer)
    if plain_added:
        tokenizer.add_tokens(list(plain_added))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder
