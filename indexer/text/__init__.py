"""The words of statutes, before any index: article numbers (第十五條之一), Traditional and
Simplified script, citations found in text (第三十條, 前條, 民法第一百八十四條) and their legal roles,
resolved against law names, and the orderings every query computes. Imports no other stage.

    numerals.py          article numbers and Chinese numerals
    chinese_script.py    which script a text is in, and conversion
    citation_parser.py   finding citations in a text
    citation_roles.py    what a citing sentence does with the article (punishes, exception, ...)
    citation_targets.py  resolving citations to articles; law aliases
    citations.py         the one import path of the three above
    ranks.py             desc_order: a library-wide ranking, cheap
"""
