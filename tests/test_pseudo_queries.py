"""The pseudo-query prompt and filter: what a small local model really returns (cases taken from
Qwen2.5-Coder-1.5B replies on 著作權法 and STARD articles) and what survives."""

from __future__ import annotations

import json

import pytest

from indexer.build.pseudo_queries import (
    MAX_QUESTION_CHARS,
    PROMPT_VERSION,
    QuestionCounts,
    cache_key,
    clean_question,
    parse_reply,
    prompt_for,
    response_schema,
    script_of,
)

pytestmark = pytest.mark.backend_free  # never opens an index

LAW = "著作權法"
ART91 = ("擅自以重製之方法侵害他人之著作財產權者，處三年以下有期徒刑、拘役，或科或併科新臺幣七十五萬元以下罰金。\n"
         "意圖銷售或出租而擅自以重製之方法侵害他人之著作財產權者，處六月以上五年以下有期徒刑，得併科新臺幣二十萬元以上二百萬元以下罰金。")
STARD_LAW = "中华人民共和国民法典"
STARD_TEXT = "依法成立的合同，受法律保护。\n\n依法成立的合同，仅对当事人具有法律约束力，但是法律另有规定的除外。"


def test_script_detection() -> None:
    assert script_of(LAW + ART91) == "hant"
    assert script_of(STARD_LAW + STARD_TEXT) == "hans"
    assert script_of("A landlord must return the deposit.") == "other"
    assert script_of("民法") == "hant"     # characters both scripts share count as the library's


def test_prompt_matches_the_passage_script_and_carries_a_worked_example() -> None:
    tw = prompt_for(LAW, "第 91 條", ART91)
    assert tw.script == "hant" and "繁體中文" in tw.system and ART91 in tw.prompt and "第 91 條" in tw.prompt
    (ex_prompt, ex_reply), = tw.examples
    reply = json.loads(ex_reply)
    assert ex_prompt != tw.prompt and "公寓大廈管理條例" in ex_prompt
    # the example obeys its own rules: it survives the filter untouched
    assert parse_reply(reply, law="公寓大廈管理條例", text=ex_prompt) == parse_reply(reply)
    cn = prompt_for(STARD_LAW, "第四百六十五条", STARD_TEXT)
    assert cn.script == "hans" and "简体中文" in cn.system and "消费者" in cn.examples[0][0]
    counts = QuestionCounts(min_in=1, max_in=2, min_out=1, max_out=2)
    small = json.loads(prompt_for(LAW, "第 91 條", ART91, counts).examples[0][1])
    assert len(small["incoming"]) == 2 and len(small["outgoing"]) == 2   # the example never asks for more


def test_schema_bounds_counts_and_length() -> None:
    schema = response_schema(QuestionCounts(2, 4, 2, 6))
    inc = schema["properties"]["incoming"]
    assert (inc["minItems"], inc["maxItems"], inc["items"]["maxLength"]) == (2, 4, MAX_QUESTION_CHARS)
    assert schema["required"] == ["incoming", "outgoing"] and schema["additionalProperties"] is False


@pytest.mark.parametrize("raw, kept", [
    # Simplified characters slipped into a Traditional passage's question
    ("违反著作權法第91條的罰金是多少？", "違反著作權法第91條的罰金是多少？"),
    # 本法 names the law: the law's name is what a searcher types
    ("本法對擅自重製的刑責為何？", "著作權法對擅自重製的刑責為何？"),
    # numbering and quotes around the question go
    ("1. 重製他人著作要負什麼刑責？", "重製他人著作要負什麼刑責？"),
    ("「意圖銷售而重製會被判多久」", "意圖銷售而重製會被判多久？"),
    # a long legal phrase quoted in a question is not a paste (19 characters of the article)
    ("擅自以重製之方法侵害他人之著作財產權者會受到什麼處罰？", "擅自以重製之方法侵害他人之著作財產權者會受到什麼處罰？"),
    # deictic questions mean nothing alone; 本條 is this article, which has a name
    ("本條規定的罰金是多少？", "著作權法第91條規定的罰金是多少？"), ("违反该条会怎样？", None), ("前述規定的例外有哪些？", None),
    ("上開刑責可以易科罰金嗎？", None),
    # the article pasted back
    ("意圖銷售或出租而擅自以重製之方法侵害他人之著作財產權者，處六月以上五年以下有期徒刑嗎？", None),
    # a statement, not a question
    ("著作權法第91條規定，著作僅供個人參考或合理使用者，不構成著作權侵害。", None),
    # too long, too short, wrong language, not a string
    ("重製" * 41 + "？", None), ("罰金？", None), ("What is the penalty for copying?", None), (42, None),
])
def test_clean_question(raw, kept) -> None:
    assert clean_question(raw, law=LAW, text=ART91, label="第 91 條") == kept


def test_this_article_without_a_label_is_dropped() -> None:
    assert clean_question("本條規定的罰金是多少？", law=LAW, text=ART91) is None


def test_simplified_passage_keeps_simplified_questions() -> None:
    assert clean_question("依法成立的合同對誰有約束力？", law=STARD_LAW, text=STARD_TEXT) == "依法成立的合同对谁有约束力？"
    assert clean_question("本法规定合同何时生效？", law=STARD_LAW, text=STARD_TEXT) == "中华人民共和国民法典规定合同何时生效？"
    assert (clean_question("本條的例外是什么？", law=STARD_LAW, text=STARD_TEXT, label="第四百六十五条")
            == "中华人民共和国民法典第四百六十五条的例外是什么？")


def test_parse_reply_dedups_within_and_across_directions() -> None:
    reply = {"incoming": ["擅自重製他人著作有什麼刑責？", "擅自重製他人著作有什麼刑責?", "意圖銷售而重製的刑度為何？"],
             "outgoing": ["擅自重製他人著作有什麼刑責？", "合理使用的判斷標準為何？", "著作財產權的存續期間多長？"]}
    pq = parse_reply(reply, law=LAW, text=ART91)
    assert pq.incoming == ("擅自重製他人著作有什麼刑責？", "意圖銷售而重製的刑度為何？")
    assert pq.outgoing == ("合理使用的判斷標準為何？", "著作財產權的存續期間多長？")


def test_a_reply_left_with_too_few_questions_is_asked_again() -> None:
    reply = {"incoming": ["該條規定什麼？", "擅自重製他人著作有什麼刑責？"], "outgoing": ["合理使用的判斷標準為何？", "著作財產權的存續期間多長？"]}
    with pytest.raises(ValueError, match="incoming: 1 usable"):
        parse_reply(reply, law=LAW, text=ART91)
    with pytest.raises(ValueError, match="list of strings"):
        parse_reply({"incoming": "not a list", "outgoing": []})
    too_many = {"incoming": [f"問題{i}的刑責為何？" for i in range(9)], "outgoing": [f"相關程序{i}為何？" for i in range(9)]}
    pq = parse_reply(too_many, QuestionCounts(2, 4, 2, 6), law=LAW, text=ART91)
    assert len(pq.incoming) == 4 and len(pq.outgoing) == 6    # more than asked is trimmed, not a failure


def test_every_drop_has_a_named_reason() -> None:
    from indexer.build.pseudo_queries import DROP_REASONS, screen_question
    cases = {"type": 3, "deictic": "該條的例外為何？", "language": "What is the penalty?", "short": "刑責？",
             "long": "著作" * 50 + "？", "pasted": ART91[:45] + "嗎？", "statement": "著作權法保護著作人的權利。"}
    for reason, q in cases.items():
        assert screen_question(q, law=LAW, text=ART91) == (None, reason), reason
    assert set(cases) | {"repeat"} == set(DROP_REASONS)
    assert screen_question("擅自重製他人著作有什麼刑責？", law=LAW, text=ART91)[1] is None


def test_a_question_mark_takes_the_form_of_the_passage_script() -> None:
    from indexer.build.pseudo_queries import screen_question
    # the 1.5B model ends some Chinese questions with a half-width "?" (seen in CI)
    assert screen_question("侵害著作人格權的行為有哪些?", law=LAW, text=ART91) == ("侵害著作人格權的行為有哪些？", None)
    assert screen_question("What does the fair use test weigh？", text="Fair use is judged by four factors.") == (
        "What does the fair use test weigh?", None)


def test_cache_key_names_prompt_version_model_and_counts() -> None:
    k = cache_key("openai:qwen", "a" * 64)
    assert k != cache_key("openai:other", "a" * 64) != cache_key("openai:qwen", "a" * 64, QuestionCounts(1, 2, 1, 2))
    assert PROMPT_VERSION == "hoprag-pq-2"


def test_repair_names_the_mistake_in_the_passage_script() -> None:
    ask = prompt_for(LAW, "第 91 條", ART91)
    with pytest.raises(ValueError) as exc:
        parse_reply({"incoming": ["擅自重製他人著作有什麼刑責？", "意圖銷售而重製的刑度為何？"],
                     "outgoing": ["擅自重製他人著作有什麼刑責？"]}, law=LAW, text=ART91)
    assert "dropped: outgoing '擅自重製他人著作有什麼刑責？': repeat" in str(exc.value)
    text = ask.repair(str(exc.value))
    assert text.startswith("上面的回答不合要求：outgoing 只剩 0 題可用") and "不可和 incoming 重複" in text
    # each dropped question is named with why, in the passage's script
    assert "被刪去的題目：outgoing 擅自重製他人著作有什麼刑責？（和另一題重複）" in text
    assert "至少 2 題" in text
    cn = prompt_for(STARD_LAW, "第四百六十五条", STARD_TEXT).repair("incoming: 1 usable questions, at least 2 required")
    assert "incoming 只剩 1 题可用" in cn and "请重新输出" in cn
