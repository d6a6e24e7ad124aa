"""TDL parsing, validation, TDL's own rules, redaction and ICICLE (imagefactory_core.tdl); the
encodings the shared safe XML parser reads are in test_tdl_safexml.py."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from imagefactory_core.errors import TemplateError
from imagefactory_core.tdl import (
    Command,
    File,
    InstallExtra,
    OSSpec,
    Package,
    Repository,
    Template,
    build_icicle,
    parse_icicle,
    parse_template,
    redact_template,
)

# The example of TDL.md, verbatim.
EXAMPLE = """<template>
  <name>rhel6_ccache</name>
  <os><name>RHEL-6</name><version>1</version><arch>x86_64</arch>
      <install type='iso'><iso>http://example.org/rhel-6-x86_64.iso</iso></install></os>
  <repositories><repository name='epel-6'>
      <url>http://download.fedoraproject.org/pub/epel/6/$basearch</url><signed>yes</signed>
  </repository></repositories>
  <packages><package name='ccache'/></packages>
  <files><file name='/etc/test.out' type='base64'>VEhJUz1leHRyYV9kYXRhCg==</file></files>
</template>"""

OS = """<os>
    <name>Fedora</name>
    <version>39</version>
    <arch>x86_64</arch>
    <install type='url'><url>http://example.org/fedora/39/</url></install>
  </os>"""


def tdl(*parts: str, os: str = OS, attributes: str = "") -> str:
    """A valid template with `parts` added after <os>, one per line."""
    body = "\n  ".join(parts)
    return f"<template{attributes}>\n  <name>t</name>\n  {os}\n  {body}\n</template>\n"


def os_with(*children: str) -> str:
    """An <os> with the usual name/version/arch and `children` (which include <install>)."""
    inner = "".join(children)
    return f"<os><name>Fedora</name><version>39</version><arch>x86_64</arch>{inner}</os>"


def error(text: str | bytes, **options: object) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        parse_template(text, **options)
    return caught.value


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# -- parsing into dataclasses ------------------------------------------------------------------
def test_example_from_tdl_md_parses_to_the_dataclasses() -> None:
    template = parse_template(EXAMPLE)

    assert template == Template(
        xml=EXAMPLE,
        name="rhel6_ccache",
        os=OSSpec(
            name="RHEL-6",
            version="1",
            arch="x86_64",
            install_type="iso",
            install_url="http://example.org/rhel-6-x86_64.iso",
        ),
        packages=(Package("ccache"),),
        files=(File("/etc/test.out", "base64", "VEhJUz1leHRyYV9kYXRhCg=="),),
        repositories=(
            Repository(
                name="epel-6",
                url="http://download.fedoraproject.org/pub/epel/6/$basearch",
                signed=True,
                persisted=True,
                sslverify=False,
            ),
        ),
    )
    assert template.files[0].data() == b"THIS=extra_data\n"


def test_every_element_in_any_order() -> None:
    text = """<template version="1.0">
  <disk><size>20</size></disk>
  <commands><command name="hello">echo hello</command></commands>
  <description>A full template</description>
  <precommands><command name="pre" type="url"> http://example.org/pre.sh </command></precommands>
  <files>
    <file name="/etc/motd">Welcome &amp; enjoy</file>
    <file name="/opt/big.iso" type="url">http://example.org/big.iso</file>
  </files>
  <os>
    <install type="iso">
      <extras><file source="/srv/ks.cfg" destination="/ks.cfg"/><directory source="/srv/d"
                destination="/d"/></extras>
      <sha256sum>http://example.org/SHA256SUMS</sha256sum>
      <iso>http://example.org/f.iso</iso>
    </install>
    <icicle><extra_command>rpm -qa --qf '%{NAME},%{LICENSE}\\n'</extra_command></icicle>
    <key>ABCD-1234</key>
    <rootpw>s3cret</rootpw>
    <kernelparam>console=ttyS0</kernelparam>
    <arch>aarch64</arch>
    <version>39</version>
    <name>Fedora</name>
  </os>
  <repositories>
    <repository name="r"><sslverify>TRUE</sslverify><persisted>No</persisted>
      <url>http://example.org/repo</url><signed>False</signed></repository>
  </repositories>
  <packages>
    <package name="vim"><arguments>--nogpgcheck</arguments><repository>r</repository>
      <file>/tmp/vim.rpm</file></package>
    <package name="git"/>
  </packages>
  <name>full</name>
</template>"""

    template = parse_template(text)

    assert template.name == "full"
    assert template.description == "A full template"
    assert template.os == OSSpec(
        name="Fedora",
        version="39",
        arch="aarch64",
        install_type="iso",
        install_url="http://example.org/f.iso",
        checksum_type="sha256sum",
        checksum_url="http://example.org/SHA256SUMS",
        rootpw="s3cret",
        key="ABCD-1234",
        kernelparam="console=ttyS0",
        icicle_extra_command="rpm -qa --qf '%{NAME},%{LICENSE}\\n'",
        install_extras=(
            InstallExtra("file", "/srv/ks.cfg", "/ks.cfg"),
            InstallExtra("directory", "/srv/d", "/d"),
        ),
    )
    assert template.packages == (
        Package("vim", repository="r", file="/tmp/vim.rpm", arguments="--nogpgcheck"),
        Package("git"),
    )
    assert template.files == (
        File("/etc/motd", "raw", "Welcome & enjoy"),
        File("/opt/big.iso", "url", "http://example.org/big.iso"),
    )
    assert template.commands == (Command("hello", "echo hello"),)
    assert template.precommands == (Command("pre", "http://example.org/pre.sh", "url"),)
    assert template.repositories == (
        Repository("r", "http://example.org/repo", signed=False, persisted=False, sslverify=True),
    )
    assert template.disk_size == 20 * 2**30


def test_xml_keeps_the_original_text_exactly() -> None:
    text = "<?xml version='1.0' encoding='UTF-8'?>\n<!-- mine -->\n" + tdl(
        "<description>  café\t</description>", "<!-- keep me -->"
    ).replace("\n", "\r\n")

    assert parse_template(text).xml == text
    assert parse_template(text.encode("utf-8")).xml == text


def test_raw_and_base64_files_give_bytes_url_files_do_not() -> None:
    payload = "ünïcode\n"
    encoded = base64.b64encode(payload.encode()).decode()
    wrapped = f"\n    {encoded[:8]}\n    {encoded[8:]}\n  "
    template = parse_template(
        tdl(
            "<files>"
            f"<file name='/raw'>{payload}</file>"
            f"<file name='/b64' type='base64'>{wrapped}</file>"
            "<file name='/url' type='url'>http://example.org/x</file>"
            "</files>"
        )
    )
    raw, b64, url = template.files

    assert raw.data() == payload.encode()
    assert b64.data() == payload.encode()
    assert b64.content == wrapped
    with pytest.raises(ValueError, match="url"):
        url.data()


# -- TDL's own rules ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["1.0", "1", "0.9", "1.00"])
def test_versions_up_to_1_0_are_accepted(version: str) -> None:
    parse_template(tdl(attributes=f" version='{version}'"))


@pytest.mark.parametrize("version", ["1.1", "2", "10.0"])
def test_versions_above_1_0_are_rejected(version: str) -> None:
    caught = error(tdl(attributes=f" version='{version}'"))

    assert str(caught) == (
        f"TDL invalid: template version {version} is not supported (the highest is 1.0) (line 1)"
    )
    assert caught.element == "template"


@pytest.mark.parametrize("version", ["abc", "NaN", "Infinity", ""])
def test_versions_that_are_not_numbers_are_rejected(version: str) -> None:
    assert "is not a number" in str(error(tdl(attributes=f" version='{version}'")))


@pytest.mark.parametrize("section", ["commands", "precommands"])
def test_commands_run_in_position_order(section: str) -> None:
    template = parse_template(
        tdl(
            f"<{section}>"
            "<command name='third' position='3'>c</command>"
            "<command name='first' position='1'>a</command>"
            "<command name='second' position='2'>b</command>"
            f"</{section}>"
        )
    )

    commands = getattr(template, section)
    assert [(c.name, c.position) for c in commands] == [("first", 1), ("second", 2), ("third", 3)]


@pytest.mark.parametrize("section", ["commands", "precommands"])
def test_commands_without_positions_run_in_document_order(section: str) -> None:
    template = parse_template(
        tdl(f"<{section}><command name='b'>b</command><command name='a'>a</command></{section}>")
    )

    assert [c.name for c in getattr(template, section)] == ["b", "a"]
    assert all(c.position is None for c in getattr(template, section))


@pytest.mark.parametrize("section", ["commands", "precommands"])
def test_positions_are_all_or_none(section: str) -> None:
    text = tdl(
        f"<{section}>",
        "<command name='a' position='1'>a</command>",
        "<command name='b'>b</command>",
        f"</{section}>",
    )

    line = line_of(text, "name='b'")

    caught = error(text)

    assert str(caught) == (
        f"TDL invalid: either every <command> in <{section}> has a position or none does "
        f"(line {line})"
    )
    assert caught.element == "command"


@pytest.mark.parametrize(
    ("positions", "culprit"),
    [((1, 3), 3), ((1, 1), 1), ((0, 1), 0), ((2, 3), 3), ((1, 2, 2), 2)],
    ids=["gap", "duplicate", "zero", "not-from-1", "duplicate-last"],
)
@pytest.mark.parametrize("section", ["commands", "precommands"])
def test_positions_run_1_to_n_without_gaps_or_duplicates(
    section: str, positions: tuple[int, ...], culprit: int
) -> None:
    commands = [f"<command name='c{i}' position='{p}'>x</command>" for i, p in enumerate(positions)]
    text = tdl(f"<{section}>", *commands, f"</{section}>")

    caught = error(text)

    assert f"has position {culprit}; positions in <{section}> must run 1..{len(positions)}" in str(
        caught
    )
    assert caught.element == "command"


@pytest.mark.parametrize("body", ["", "   \n\t  "])
@pytest.mark.parametrize("kind", ["raw", "base64", "url"])
def test_empty_command_bodies_are_rejected(kind: str, body: str) -> None:
    text = tdl("<commands>", f"<command name='empty' type='{kind}'>{body}</command>", "</commands>")

    caught = error(text)

    assert str(caught) == (
        f'TDL invalid: <command name="empty"> has an empty body (line {line_of(text, "empty")})'
    )


def test_base64_commands_are_decoded_and_keep_their_type() -> None:
    script = "#!/bin/sh\necho 'hi'\n"
    encoded = base64.b64encode(script.encode()).decode()
    template = parse_template(
        tdl(f"<commands><command name='s' type='base64'>\n{encoded}\n</command></commands>")
    )

    assert template.commands == (Command("s", script, "base64"),)


def test_raw_command_bodies_are_kept_as_written() -> None:
    body = "\n  set -e\n  echo a &amp;&amp; echo b\n"
    template = parse_template(tdl(f"<commands><command name='s'>{body}</command></commands>"))

    assert template.commands[0].body == "\n  set -e\n  echo a && echo b\n"


@pytest.mark.parametrize(
    "element",
    [
        "<commands><command name='bad' type='base64'>not base64!</command></commands>",
        "<precommands><command name='bad' type='base64'>QUJ</command></precommands>",
        "<files><file name='/bad' type='base64'>%%%%</file></files>",
    ],
)
def test_invalid_base64_is_rejected(element: str) -> None:
    text = tdl(element)

    caught = error(text)

    assert "is not valid base64" in str(caught)
    assert 'name="' in str(caught)
    assert caught.line == line_of(text, "bad")


def test_base64_command_that_is_not_utf8_is_rejected() -> None:
    encoded = base64.b64encode(b"\xff\xfe").decode()

    assert "is not UTF-8 text" in str(
        error(tdl(f"<commands><command name='c' type='base64'>{encoded}</command></commands>"))
    )


@pytest.mark.parametrize("name", ["etc/motd", "/etc/../../host", ""])
def test_file_names_must_be_absolute_without_dot_dot(name: str) -> None:
    assert "must be an absolute path" in str(
        error(tdl(f"<files><file name='{name}'>x</file></files>"))
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((None, None, None), (False, True, False)),
        (("yes", "no", "true"), (True, False, True)),
        (("TRUE", "FALSE", "Yes"), (True, False, True)),
        (("No", "Yes", "fAlSe"), (False, True, False)),
        ((" yes ", None, None), (True, True, False)),
    ],
)
def test_repository_booleans_and_defaults(
    values: tuple[str | None, ...], expected: tuple[bool, ...]
) -> None:
    flags = "".join(
        f"<{tag}>{value}</{tag}>"
        for tag, value in zip(("signed", "persisted", "sslverify"), values, strict=True)
        if value is not None
    )
    template = parse_template(
        tdl(f"<repositories><repository name='r'><url>u</url>{flags}</repository></repositories>")
    )
    repository = template.repositories[0]

    assert (repository.signed, repository.persisted, repository.sslverify) == expected


def test_repository_boolean_that_is_not_one_is_rejected() -> None:
    text = tdl("<repositories><repository name='r'>", "<url>u</url><signed>maybe</signed>",
               "</repository></repositories>")  # fmt: skip

    caught = error(text)

    assert str(caught) == (
        "TDL invalid: invalid value 'maybe' in <signed>; expected true, false, yes or no "
        f"(line {line_of(text, 'maybe')})"
    )
    assert caught.element == "signed"


def test_repository_needs_a_url() -> None:
    caught = error(tdl("<repositories><repository name='r'/></repositories>"))

    assert str(caught).startswith("TDL invalid: element <repository> is missing <url>")


@pytest.mark.parametrize("checksum", ["md5sum", "sha1sum", "sha256sum"])
def test_one_checksum_is_accepted(checksum: str) -> None:
    install = f"<install type='iso'><iso>i</iso><{checksum}>http://c</{checksum}></install>"

    template = parse_template(tdl(os=os_with(install)))

    assert (template.os.checksum_type, template.os.checksum_url) == (checksum, "http://c")


def test_two_checksums_are_rejected() -> None:
    text = tdl(os=os_with(
        "<install type='iso'><iso>i</iso>\n<md5sum>a</md5sum>\n<sha1sum>b</sha1sum></install>"
    ))  # fmt: skip

    caught = error(text)

    assert str(caught) == (
        "TDL invalid: element <install> may have at most one checksum, found <md5sum>, <sha1sum> "
        f"(line {line_of(text, '<sha1sum>')})"
    )


@pytest.mark.parametrize(
    ("install", "message"),
    [
        ("<install type='iso'><url>u</url></install>",
         'element <url> not allowed in <install type="iso">'),
        ("<install type='url'><iso>i</iso></install>",
         'element <iso> not allowed in <install type="url">'),
        ("<install type='url'><url>u</url><sha1sum>s</sha1sum></install>",
         'element <sha1sum> not allowed in <install type="url">'),
        ("<install type='iso'></install>", 'element <install type="iso"> is missing <iso>'),
        ("<install type='ftp'><url>u</url></install>",
         'invalid attribute type="ftp" on <install>; expected one of url, iso'),
    ],
)  # fmt: skip
def test_install_children_follow_its_type(install: str, message: str) -> None:
    assert str(error(tdl(os=os_with(install)))).startswith(f"TDL invalid: {message} (line ")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("10", 10 * 2**30),
        ("10G", 10 * 2**30),
        ("10g", 10 * 2**30),
        ("10Gi", 10 * 2**30),
        ("10GiB", 10 * 2**30),
        ("10GB", 10 * 10**9),
        ("10gb", 10 * 10**9),
        ("2T", 2 * 2**40),
        ("2TiB", 2 * 2**40),
        ("2TB", 2 * 10**12),
        ("512M", 512 * 2**20),
        ("512MB", 512 * 10**6),
        ("4096k", 4096 * 2**10),
        ("4096KB", 4096 * 10**3),
        ("1P", 2**50),
        ("1EB", 10**18),
        ("1Zi", 2**70),
        ("1YB", 10**24),
        ("1073741824B", 2**30),
        ("10 GB", 10 * 10**9),
        ("  10 GiB\n", 10 * 2**30),
    ],
)
def test_disk_size_table(size: str, expected: int) -> None:
    assert parse_template(tdl(f"<disk><size>{size}</size></disk>")).disk_size == expected


def test_no_disk_means_no_size() -> None:
    assert parse_template(tdl()).disk_size is None


@pytest.mark.parametrize("size", ["", "G", "GB", "10iB", "0", "0G", "10 QB", "ten", "-1G", "1.5G"])
def test_invalid_disk_sizes_are_rejected(size: str) -> None:
    text = tdl("<disk>", f"<size>{size}</size>", "</disk>")

    caught = error(text)

    assert caught.element == "size"
    assert caught.line == line_of(text, "<size>")


def test_rootpw_is_optional_unless_required() -> None:
    assert parse_template(tdl()).os.rootpw is None

    caught = error(tdl(), require_rootpw=True)

    assert str(caught) == (
        "TDL invalid: element <os> is missing <rootpw>, which this service requires (line 3)"
    )
    assert caught.element == "os"


def test_required_rootpw_must_not_be_empty() -> None:
    install = "<install type='url'><url>u</url></install>"

    assert "missing <rootpw>" in str(
        error(tdl(os=os_with(install, "<rootpw> </rootpw>")), require_rootpw=True)
    )
    template = parse_template(tdl(os=os_with(install, "<rootpw>pw</rootpw>")), require_rootpw=True)
    assert template.os.rootpw == "pw"


# -- schema errors -----------------------------------------------------------------------------
def test_typo_in_os_names_the_element_its_parent_and_the_line() -> None:
    text = """<template>
  <name>t</name>
  <os>
    <name>Fedora</name>
    <version>39</version>
    <intall type='url'><url>http://example.org/</url></intall>
    <arch>x86_64</arch>
  </os>
</template>"""

    caught = error(text)

    assert str(caught) == "TDL invalid: element <intall> not allowed in <os> (line 6)"
    assert (caught.line, caught.element) == (6, "intall")


@pytest.mark.parametrize(
    ("part", "message", "element"),
    [
        ("<bogus/>", "element <bogus> not allowed in <template>", "bogus"),
        ("<name>again</name>", "element <name> may appear only once in <template>", "name"),
        ("<packages><package name='p'><version>1</version></package></packages>",
         "element <version> not allowed in <package>", "version"),
        ("<packages><package/></packages>", "element <package> is missing attribute name",
         "package"),
        ("<files><file name='/a' mode='0644'>x</file></files>",
         "attribute mode not allowed on <file>", "file"),
        ("<commands><command name='c' position='first'>x</command></commands>",
         'invalid attribute position="first" on <command>', "command"),
        ("<packages>loose text</packages>", "text not allowed in <packages>", "packages"),
        ("<disk/>", "element <disk> is missing <size>", "disk"),
    ],
)  # fmt: skip
def test_schema_errors_name_the_element_and_the_line(part: str, message: str, element: str) -> None:
    text = tdl("<!-- spacer -->", part)

    caught = error(text)

    assert str(caught) == f"TDL invalid: {message} (line {line_of(text, part)})"
    assert caught.element == element


XI = 'xmlns:xi="http://www.w3.org/2001/XInclude"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (tdl(f"<xi:include {XI} href='http://127.0.0.1:9/x'/>"),
         "element <xi:include> not allowed in <template> (line 9)"),
        (tdl(os=OS.replace("<arch>", f"<xi:include {XI} href='x'/><arch>")),
         "element <xi:include> not allowed in <os> (line 6)"),
        (tdl(f"<description><xi:include {XI} href='x'/></description>"),
         "element <xi:include> not allowed in <description> (line 9)"),
        (tdl(attributes=' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                        'xsi:noNamespaceSchemaLocation="http://127.0.0.1:9/s.xsd"'),
         "attribute xsi:noNamespaceSchemaLocation not allowed on <template> (line 1)"),
        (tdl().replace("<template>", '<template xmlns="urn:x">'),
         "root element must be <template>, not <{urn:x}template> (line 1)"),
    ],
)  # fmt: skip
def test_namespaced_elements_are_named_as_written(text: str, message: str) -> None:
    """The schema's errors name a namespaced element or attribute with the template's prefix
    and blame the element itself, not its parent ("<os> is missing <arch>")."""
    assert str(error(text)) == f"TDL invalid: {message}"


@pytest.mark.parametrize(
    ("os", "message"),
    [
        (os_with("<install type='url'><url>u</url></install>").replace("x86_64", "sparc"),
         "invalid value 'sparc' in <arch>; expected one of i386, x86_64, ppc64, ppc64le, "
         "aarch64, armv7l, s390x"),
        ("<os><name>F</name><arch>i386</arch><install type='url'><url>u</url></install></os>",
         "element <os> is missing <version>"),
        (os_with("<install type='url'><url>u</url></install><icicle/>"),
         "element <icicle> is missing <extra_command>"),
        (os_with("<install type='iso'><iso>i</iso><extras><file source='s'/></extras></install>"),
         "element <file> is missing attribute destination"),
    ],
)  # fmt: skip
def test_errors_inside_os_are_precise(os: str, message: str) -> None:
    assert str(error(tdl(os=os))) == f"TDL invalid: {message} (line 3)"


def test_missing_name_and_wrong_root() -> None:
    assert str(error("<template>" + OS + "</template>")) == (
        "TDL invalid: element <template> is missing <name> (line 1)"
    )
    assert (
        str(error("<tdl/>")) == "TDL invalid: root element must be <template>, not <tdl> (line 1)"
    )


def test_malformed_xml_names_the_line() -> None:
    text = "<template>\n  <name>t</name>\n  <os>\n</template>\n"

    caught = error(text)

    assert str(caught) == (
        "TDL is not well-formed XML: Opening and ending tag mismatch: os line 3 and template "
        "(line 4)"
    )
    assert caught.line == 4


def test_undeclared_entities_are_malformed() -> None:
    assert "not well-formed" in str(error(tdl("<description>&nbsp;</description>")))


def test_an_encoding_declaration_does_not_re_decode_text() -> None:
    text = "<?xml version='1.0' encoding='ISO-8859-1'?>" + tdl("<description>café</description>")

    assert parse_template(text).description == "café"


# -- hostile input -----------------------------------------------------------------------------
def _laugh(level: int) -> str:
    return f"&lol{level - 1 if level > 1 else ''};"


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{_laugh(i) * 10}">\n' for i in range(1, 10))
    + "]>\n<template><name>&lol9;</name></template>"
)


def test_billion_laughs_is_rejected_fast_without_expansion() -> None:
    started = time.perf_counter()

    caught = error(BILLION_LAUGHS)

    assert time.perf_counter() - started < 1
    assert str(caught) == "TDL must not contain a DOCTYPE or entity declarations (line 2)"
    assert "lollol" not in str(caught)


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE template [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE template [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
        '<!DOCTYPE template SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE template SYSTEM "http://example.org/evil.dtd">',
    ],
)
def test_external_entities_and_dtds_are_rejected(doctype: str) -> None:
    text = f"<?xml version='1.0'?>\n<!-- a comment -->\n{doctype}\n" + tdl(
        "<description>&xxe;</description>"
    )

    caught = error(text)

    assert str(caught) == "TDL must not contain a DOCTYPE or entity declarations (line 3)"
    assert "root:" not in str(caught)


def test_deep_nesting_hits_the_parser_limits() -> None:
    nested = "<x>" * 1000 + "</x>" * 1000

    assert "not well-formed" in str(error(tdl(f"<description>{nested}</description>")))


def test_doctype_text_inside_cdata_is_only_text() -> None:
    script = "cat > /var/www/index.html <<EOF\n<!DOCTYPE html>\nEOF\n"
    template = parse_template(
        tdl(f"<commands><command name='web'><![CDATA[{script}]]></command></commands>")
    )

    assert template.commands[0].body == script


def test_oversize_templates_are_rejected() -> None:
    padding = "<description>" + "x" * 1_048_576 + "</description>"

    for text in (tdl(padding), tdl(padding).encode()):
        assert str(error(text)) == "template is larger than the limit of 1048576 bytes"


def test_size_limit_counts_bytes_not_characters() -> None:
    text = tdl("<description>" + "é" * 300 + "</description>")
    limit = len(text) + 100  # more characters than the text has, fewer bytes

    assert "larger than the limit" in str(error(text, max_bytes=limit))
    assert parse_template(text, max_bytes=len(text.encode())).description == "é" * 300


@pytest.mark.parametrize(
    "text",
    [
        "/etc/passwd",
        "templates/fedora.tdl",
        "file:///etc/passwd",
        "https://example.org/template.xml",
        b"/etc/passwd",
        Path("/etc/passwd"),
    ],
)
def test_paths_and_urls_are_not_templates(text: object) -> None:
    assert str(error(text)) == "template must be TDL XML text, not a file path or URL"  # type: ignore[arg-type]


def test_empty_text_is_not_a_template() -> None:
    assert str(error(" \n")) == "template is empty: expected TDL XML text"


def test_bytes_without_a_bom_or_declaration_must_be_utf8() -> None:
    assert "not UTF-8 text" in str(error(tdl("<description>café</description>").encode("latin-1")))


def test_validation_stays_linear_for_long_lists() -> None:
    # libxml2's interleave is quadratic in the elements below it; a 1 MiB list took seconds.
    packages = "<packages>" + "<package name='p'/>" * 50_000 + "</packages>"
    text = tdl(packages)
    started = time.perf_counter()

    assert len(parse_template(text, max_bytes=len(text)).packages) == 50_000
    assert time.perf_counter() - started < 2


# -- redaction ---------------------------------------------------------------------------------
def test_redaction_masks_rootpw_and_key_and_keeps_everything_else() -> None:
    install = "<install type='url'><url>http://example.org/</url></install>"
    text = tdl(
        "<!-- note -->",
        os=os_with(install, "\n    <rootpw>hunter2</rootpw>", "<key >K3Y-123</key >"),
    )

    redacted = redact_template(text)

    assert "hunter2" not in redacted
    assert "K3Y-123" not in redacted
    assert redacted == text.replace("hunter2", "*****").replace("K3Y-123", "*****")
    assert parse_template(text).redacted_xml == redacted


def test_redaction_handles_cdata_comments_and_empty_elements() -> None:
    assert redact_template("<rootpw><![CDATA[a</rootpw>b]]></rootpw>") == "<rootpw>*****</rootpw>"
    assert redact_template("<rootpw>a<!-- </rootpw> -->b</rootpw>") == "<rootpw>*****</rootpw>"
    assert redact_template("<rootpw/><key />") == "<rootpw/><key />"
    lookalikes = "<rootpwd>x</rootpwd><keys>y</keys>"
    assert redact_template(lookalikes) == lookalikes
    assert redact_template("<rootpw>unclosed secret") == "<rootpw>*****"


def test_template_without_secrets_is_unchanged() -> None:
    assert redact_template(EXAMPLE) == EXAMPLE


def test_secrets_stay_out_of_repr() -> None:
    install = "<install type='url'><url>u</url></install>"
    template = parse_template(tdl(os=os_with(install, "<rootpw>hunter2</rootpw><key>K3Y</key>")))

    assert "hunter2" not in repr(template)
    assert "K3Y" not in repr(template)


# -- ICICLE ------------------------------------------------------------------------------------
def test_icicle_round_trip() -> None:
    packages = [
        ("bash-5.2.26-1.fc39.x86_64", "bash,GPLv3+"),
        ("kernel-6.5.6-300.fc39.x86_64", None),
        ('odd<&>"name', "extra with <markup> & 'quotes'"),
        ("empty-extra", ""),
    ]

    xml = build_icicle(packages, "A description & more")

    assert parse_icicle(xml) == packages
    assert "<description>A description &amp; more</description>" in xml


def test_icicle_shape_matches_tdl_md() -> None:
    xml = build_icicle([("a-1-1.noarch", "x")], None)

    assert "<description" not in xml
    assert xml.split() == [
        "<icicle>", "<packages>", '<package', 'name="a-1-1.noarch">', "<extra>x</extra>",
        "</package>", "</packages>", "</icicle>",
    ]  # fmt: skip
    assert parse_icicle(build_icicle([], None)) == []


def test_parse_icicle_rejects_what_is_not_icicle() -> None:
    assert "root element must be <icicle>" in str(_icicle_error("<template/>"))
    assert "missing attribute name" in str(
        _icicle_error("<icicle><packages><package/></packages></icicle>")
    )
    assert "not well-formed" in str(_icicle_error("<icicle>"))
    assert "DOCTYPE" in str(_icicle_error(BILLION_LAUGHS.replace("template", "icicle")))


def _icicle_error(xml: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        parse_icicle(xml)
    return caught.value
