#!/usr/bin/env python3
"""Validates policy objects against the CustomResourceDefinitions in deploy/crds/.

  python3 deploy/crds/validate.py               # fixtures/ and deploy/examples/
  python3 deploy/crds/validate.py FILE|DIR ...  # those instead

1. Checks both CRDs: names, version, scope, status subresource, that each schema is structural (the
   rules the API server enforces, so a mistake shows here rather than at `kubectl apply`), that
   every default validates, and that the parts the two kinds share (frontend, config, PortInfo,
   LabelSelector) are identical in both files.
2. Converts each `spec.versions[0].schema.openAPIV3Schema` to plain JSON Schema:
   x-kubernetes-int-or-string becomes integer-or-string, nullable adds null; descriptions, defaults
   and other x-kubernetes-* markers are dropped; objects with `properties` reject unknown fields
   (kubectl's default --validate=strict does too; the API server would otherwise prune them).
3. Validates every LocalRedirectPolicy / BalancingPolicy of apiVersion balancing.elf.io/v1beta1 in
   the .yaml/.yml/.json files found: one object, a multi-document stream, or a `List` / `<Kind>List`
   with `items`. Policies of another apiVersion are reported and skipped (as the compiler does).
4. Checks that a built-in list of invalid objects is rejected, at the expected field, and that a
   built-in list of valid variants is accepted, so this test can fail.

Exits 1 with file, object and field path for every violation; otherwise prints one summary line.
Needs PyYAML and jsonschema (Debian: python3-yaml, python3-jsonschema; `make deps` installs them).
"""
import copy
import json
import os
import re
import sys

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GROUP = 'balancing.elf.io'
API_VERSION = GROUP + '/v1beta1'
CRDS = {
    'LocalRedirectPolicy': ('deploy/crds/localredirectpolicies.yaml', 'localredirectpolicies', 'lr'),
    'BalancingPolicy': ('deploy/crds/balancingpolicies.yaml', 'balancingpolicies', 'bl'),
}
DEFAULT_INPUTS = ['fixtures', 'deploy/examples']

problems = []  # (where, message)


def problem(where, message):
    problems.append((where, message))


# ---------------------------------------------------------------------------------------------
# Loading (PyYAML reads YAML 1.1, as kubectl does; duplicate keys are errors, as in kubectl)

class StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                loader.duplicates.append((key, key_node.start_mark.line + 1, seen[key]))
            seen[key] = key_node.start_mark.line + 1
        except TypeError:  # an unhashable key: construct_mapping reports it
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_documents(path):
    """Returns (documents, duplicate-key messages). Raises on a syntax error."""
    if path.endswith('.json'):
        dups = []

        def pairs(items):
            d = {}
            for k, v in items:
                if k in d:
                    dups.append(f'duplicate key {k!r}')
                d[k] = v
            return d
        with open(path, encoding='utf-8') as f:
            return [json.load(f, object_pairs_hook=pairs)], dups
    with open(path, encoding='utf-8') as f:
        loader = StrictLoader(f)
        loader.duplicates = []
        try:
            docs = []
            while loader.check_data():
                docs.append(loader.get_data())
        finally:
            loader.dispose()
    return docs, [f'line {line}: duplicate key {k!r} (first at line {first})' for k, line, first in loader.duplicates]


def policy_objects(docs):
    """Yields (index label, object) for every policy kind object in the documents, lists unwrapped."""
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            continue
        kind = doc.get('kind')
        if isinstance(kind, str) and kind.endswith('List') and 'items' in doc:
            item_kind = None if kind == 'List' else kind[:-len('List')]
            item_api = None if kind == 'List' else doc.get('apiVersion')
            for j, item in enumerate(doc.get('items') or []):
                if not isinstance(item, dict):
                    continue
                k = item.get('kind', item_kind)
                if k in CRDS:
                    if 'kind' not in item or 'apiVersion' not in item:
                        item = dict(item)
                        item.setdefault('kind', item_kind)
                        if item_api is not None:
                            item.setdefault('apiVersion', item_api)
                    yield f'document {i + 1} items[{j}]', item
        elif kind in CRDS:
            yield f'document {i + 1}', doc


def input_files(paths):
    """(the argument, a file) for every .yaml/.yml/.json file under each argument; a missing one is skipped."""
    for p in paths:
        full = p if os.path.isabs(p) else os.path.join(ROOT, p)
        if os.path.isfile(full):
            yield p, full
            continue
        for root, dirs, files in os.walk(full):
            # fixtures/hostile holds inputs that must be refused (the Swift HostileInputTests).
            dirs[:] = sorted(d for d in dirs if os.path.join(root, d) != os.path.join(ROOT, 'fixtures', 'hostile'))
            for f in sorted(files):
                if f.endswith(('.yaml', '.yml', '.json')):
                    yield p, os.path.join(root, f)


def rel(path):
    r = os.path.relpath(path, ROOT)
    return path if r.startswith('..') else r


# ---------------------------------------------------------------------------------------------
# The CRDs themselves

JUNCTORS = ('allOf', 'anyOf', 'oneOf', 'not')
KNOWN_KEYS = {
    'description', 'type', 'format', 'title', 'default', 'example', 'externalDocs', 'nullable', 'enum',
    'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'multipleOf', 'maxLength', 'minLength',
    'pattern', 'maxItems', 'minItems', 'uniqueItems', 'maxProperties', 'minProperties', 'required', 'items',
    'properties', 'additionalProperties', 'allOf', 'anyOf', 'oneOf', 'not',
    'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource', 'x-kubernetes-int-or-string',
    'x-kubernetes-list-map-keys', 'x-kubernetes-list-type', 'x-kubernetes-map-type', 'x-kubernetes-validations',
}
INT_OR_STRING = [{'type': 'integer'}, {'type': 'string'}]
# Inside allOf/anyOf/oneOf/not a structural schema only restricts values.
FORBIDDEN_IN_JUNCTORS = {'description', 'type', 'default', 'additionalProperties', 'nullable'}


def check_regex(where, pattern):
    try:
        re.compile(pattern)
    except re.error as e:
        problem(where, f'pattern does not compile: {e}')
    # Go's regexp (RE2), which the API server uses, has no look-around or back-references.
    if re.search(r'\(\?[=!<]|\\[1-9]', pattern):
        problem(where, 'pattern uses look-around or a back-reference, which the API server (RE2) rejects')


def check_structural(s, where, level='root'):
    """The structural-schema rules of apiextensions.k8s.io/v1 that matter for hand-written CRDs."""
    if not isinstance(s, dict):
        problem(where, 'a schema must be a mapping')
        return
    for k in s:
        if k not in KNOWN_KEYS:
            problem(where, f'unknown schema keyword {k!r}')
    if 'pattern' in s:
        check_regex(where, s['pattern'])
    ios = s.get('x-kubernetes-int-or-string') is True
    if not s.get('type') and not ios and not s.get('x-kubernetes-preserve-unknown-fields'):
        problem(where, 'type must not be empty')
    if ios and s.get('type'):
        problem(where, 'type must be empty when x-kubernetes-int-or-string is true')
    if s.get('type') == 'array' and 'items' not in s:
        problem(where, 'an array needs items')
    if 'properties' in s and 'additionalProperties' in s:
        problem(where, 'properties and additionalProperties are mutually exclusive')
    if level == 'root' and s.get('type') != 'object':
        problem(where, 'the root must be of type object')
    for name, sub in (s.get('properties') or {}).items():
        if level == 'root' and name == 'metadata':
            if set(sub) - {'type', 'description'} or sub.get('type') != 'object':
                problem(f'{where}.properties.metadata', 'metadata may only be declared as type: object')
            continue
        check_structural(sub, f'{where}.properties.{name}', 'field')
    if isinstance(s.get('items'), dict):
        check_structural(s['items'], f'{where}.items', 'item')
    if isinstance(s.get('additionalProperties'), dict):
        check_structural(s['additionalProperties'], f'{where}.additionalProperties', 'field')
    for j in JUNCTORS:
        if j not in s:
            continue
        subs = s[j] if j != 'not' else [s[j]]
        for i, sub in enumerate(subs):
            if ios and ((j == 'anyOf' and s[j] == INT_OR_STRING) or (j == 'allOf' and i == 0 and sub == {'anyOf': INT_OR_STRING})):
                continue
            check_in_junctor(sub, s, f'{where}.{j}[{i}]')


def check_in_junctor(n, outer, where):
    if not isinstance(n, dict):
        problem(where, 'a schema must be a mapping')
        return
    for k in n:
        if k in FORBIDDEN_IN_JUNCTORS or k.startswith('x-kubernetes-'):
            problem(where, f'{k!r} is not allowed inside allOf/anyOf/oneOf/not')
        elif k not in KNOWN_KEYS:
            problem(where, f'unknown schema keyword {k!r}')
    if 'pattern' in n:
        check_regex(where, n['pattern'])
    for name, sub in (n.get('properties') or {}).items():
        if name not in (outer.get('properties') or {}):
            problem(f'{where}.properties.{name}', 'a field inside a junctor must also be declared outside it')
        else:
            check_in_junctor(sub, outer['properties'][name], f'{where}.properties.{name}')
    if 'items' in n:
        if not isinstance(outer.get('items'), dict):
            problem(f'{where}.items', 'items inside a junctor need items outside it')
        else:
            check_in_junctor(n['items'], outer['items'], f'{where}.items')
    for j in JUNCTORS:
        if j in n:
            for i, sub in enumerate(n[j] if j != 'not' else [n[j]]):
                check_in_junctor(sub, outer, f'{where}.{j}[{i}]')


def to_json_schema(s, structural=True):
    """A Kubernetes structural schema as plain JSON Schema (see the module doc)."""
    out = {}
    for k, v in s.items():
        # (description is kept: jsonschema ignores it, describe() quotes it)
        if k in ('default', 'example', 'externalDocs', 'format', 'nullable', 'title') or k.startswith('x-kubernetes-'):
            continue
        if k == 'properties':
            out[k] = {name: to_json_schema(sub, structural) for name, sub in v.items()}
        elif k == 'items':
            out[k] = to_json_schema(v, structural)
        elif k == 'additionalProperties':
            out[k] = to_json_schema(v, structural) if isinstance(v, dict) else v
        elif k in ('allOf', 'anyOf', 'oneOf'):
            out[k] = [to_json_schema(sub, False) for sub in v]
        elif k == 'not':
            out[k] = to_json_schema(v, False)
        else:
            out[k] = copy.deepcopy(v)
    if s.get('x-kubernetes-int-or-string') and 'anyOf' not in s and 'allOf' not in s:
        out['anyOf'] = copy.deepcopy(INT_OR_STRING)
    if s.get('nullable') and 'type' in out:
        out['type'] = [out['type'], 'null']
        if 'enum' in out and None not in out['enum']:
            out['enum'] = out['enum'] + [None]
    if structural and 'properties' in s and 'additionalProperties' not in s and not s.get('x-kubernetes-preserve-unknown-fields'):
        out['additionalProperties'] = False
    return out


def check_defaults(s, where):
    """Every default must validate against its own (converted) schema, as the API server requires."""
    if 'default' in s:
        errs = list(jsonschema.Draft4Validator(to_json_schema(s)).iter_errors(s['default']))
        for e in errs:
            problem(where, f'default {s["default"]!r} is invalid: {e.message}')
    for name, sub in (s.get('properties') or {}).items():
        check_defaults(sub, f'{where}.properties.{name}')
    if isinstance(s.get('items'), dict):
        check_defaults(s['items'], f'{where}.items')


def strip_descriptions(s):
    if isinstance(s, dict):
        return {k: strip_descriptions(v) for k, v in s.items() if k != 'description'}
    if isinstance(s, list):
        return [strip_descriptions(v) for v in s]
    return s


def collect(s, key, out, where):
    """Every sub-schema under a property named key (toPorts, *Selector)."""
    if not isinstance(s, dict):
        return
    for name, sub in (s.get('properties') or {}).items():
        if name == key or (key == 'Selector' and name.endswith('Selector')):
            out.append((f'{where}.{name}', sub))
        collect(sub, key, out, f'{where}.{name}')
    if isinstance(s.get('items'), dict):
        collect(s['items'], key, out, f'{where}[]')


def load_crds():
    schemas = {}
    raw = {}
    for kind, (path, plural, short) in CRDS.items():
        where = path
        try:
            docs, dups = load_documents(os.path.join(ROOT, path))
        except (OSError, yaml.YAMLError) as e:
            problem(where, f'cannot read: {e}')
            continue
        for d in dups:
            problem(where, d)
        docs = [d for d in docs if d is not None]
        if len(docs) != 1 or not isinstance(docs[0], dict):
            problem(where, 'expected exactly one CustomResourceDefinition')
            continue
        crd = docs[0]
        spec = crd.get('spec') or {}
        names = spec.get('names') or {}
        expect = [
            (crd.get('apiVersion'), 'apiextensions.k8s.io/v1', 'apiVersion'),
            (crd.get('kind'), 'CustomResourceDefinition', 'kind'),
            ((crd.get('metadata') or {}).get('name'), f'{plural}.{GROUP}', 'metadata.name'),
            (spec.get('group'), GROUP, 'spec.group'),
            (spec.get('scope'), 'Cluster', 'spec.scope'),
            (names.get('kind'), kind, 'spec.names.kind'),
            (names.get('plural'), plural, 'spec.names.plural'),
            (names.get('shortNames'), [short], 'spec.names.shortNames'),
        ]
        for got, want, field in expect:
            if got != want:
                problem(where, f'{field} is {got!r}, expected {want!r}')
        versions = spec.get('versions') or []
        if len(versions) != 1:
            problem(where, 'expected exactly one version (v1beta1)')
            continue
        v = versions[0]
        if (v.get('name'), v.get('served'), v.get('storage')) != ('v1beta1', True, True):
            problem(where, 'spec.versions[0] must be v1beta1, served and storage')
        if (v.get('subresources') or {}).get('status') != {}:
            problem(where, 'spec.versions[0] needs the status subresource')
        for c in v.get('additionalPrinterColumns') or []:
            if not {'name', 'type', 'jsonPath'} <= set(c):
                problem(where, f'printer column {c!r} needs name, type and jsonPath')
        schema = ((v.get('schema') or {}).get('openAPIV3Schema'))
        if not isinstance(schema, dict):
            problem(where, 'spec.versions[0].schema.openAPIV3Schema is missing')
            continue
        check_structural(schema, f'{where}: openAPIV3Schema')
        check_defaults(schema, f'{where}: openAPIV3Schema')
        raw[kind] = schema
        converted = to_json_schema(schema)
        try:
            jsonschema.Draft4Validator.check_schema(converted)
        except jsonschema.SchemaError as e:
            problem(where, f'not a valid JSON Schema after conversion: {e.message}')
            continue
        schemas[kind] = jsonschema.Draft4Validator(converted)
    if len(raw) == 2:
        lrp = raw['LocalRedirectPolicy']['properties']['spec']['properties']
        bp = raw['BalancingPolicy']['properties']['spec']['properties']
        for field in ('frontend', 'config', 'enabled'):
            if lrp.get(field) != bp.get(field):
                problem('deploy/crds', f'spec.{field} differs between the two CRDs (it is shared: keep them identical)')
        for key in ('toPorts', 'Selector'):
            found = []
            for kind, s in raw.items():
                collect(s, key, found, kind)
            items = [(w, strip_descriptions(sub.get('items') if key == 'toPorts' else sub)) for w, sub in found]
            for w, sub in items[1:]:
                if sub != items[0][1]:
                    problem('deploy/crds', f'{w} differs from {items[0][0]} (the shared {"PortInfo" if key == "toPorts" else "LabelSelector"} schema)')
    return schemas


# ---------------------------------------------------------------------------------------------
# Validation

def path_of(error):
    out = ''
    for p in error.absolute_path:
        out += f'[{p}]' if isinstance(p, int) else (f'.{p}' if out else p)
    return out or '(object)'


def describe(error):
    """A short message: jsonschema's default ones print whole sub-objects and long patterns."""
    v, inst, sch = error.validator, error.instance, error.validator_value
    if v == 'oneOf':
        keys = [b.get('required', [None])[0] for b in sch if isinstance(b, dict) and list(b) == ['required'] and len(b['required']) == 1]
        if len(keys) == len(sch) and isinstance(inst, dict):
            present = [k for k in keys if k in inst]
            if len(present) > 1:
                return f'{" and ".join(present)} are mutually exclusive'
            if not present:
                return f'exactly one of {" or ".join(keys)} is required'
        return 'matches none or several of the alternatives' + (f' ({error.context[0].message})' if error.context else '')
    if v == 'anyOf':
        if sch == INT_OR_STRING:
            return f'expected an integer or a string, found {type(inst).__name__} {inst!r}'
        if sch and sch[0] == {'maxItems': 1}:
            return 'when several ports are listed, every port must be named'
        if isinstance(inst, dict) and 'operator' in inst:
            return f'operator {inst.get("operator")!r}: In and NotIn need values, Exists and DoesNotExist take none'
        return 'matches none of the alternatives' + (f' ({error.context[0].message})' if error.context else '')
    if v == 'pattern':
        what = (error.schema.get('description') or '').split('. ')[0].rstrip('.')
        return f'{inst!r} is invalid' + (f': expected {what[0].lower() + what[1:]}' if what else f' (pattern {sch})')
    if v == 'additionalProperties':
        extra = sorted(set(inst) - set(error.schema.get('properties', {})))
        return f'unknown field{"s" if len(extra) > 1 else ""} {", ".join(map(repr, extra))}'
    msg = error.message
    return msg if len(msg) <= 200 else msg[:200] + '…'


def object_errors(validators, obj):
    """[(path, message)] for one policy object."""
    kind = obj.get('kind')
    errs = []
    meta = obj.get('metadata')
    if not isinstance(meta, dict) or not isinstance(meta.get('name'), str) or not meta['name']:
        errs.append(('metadata.name', 'a policy needs a name'))
    v = validators.get(kind)
    if v is None:
        return errs + [('(object)', f'no usable CRD for {kind}')]
    for e in v.iter_errors(obj):
        errs.append((path_of(e), describe(e)))
    errs.sort()
    return errs


def object_label(obj):
    name = (obj.get('metadata') or {}).get('name') if isinstance(obj.get('metadata'), dict) else None
    return f'{obj.get("kind")} {name or "(unnamed)"}'


def validate_files(validators, paths):
    counts = {}
    valid = 0
    for top, path in input_files(paths):
        try:
            docs, dups = load_documents(path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
            problem(rel(path), f'cannot parse: {e}')
            continue
        objects = list(policy_objects(docs))
        if objects:
            for d in dups:
                problem(rel(path), d)
        for label, obj in objects:
            if obj.get('apiVersion') != API_VERSION:
                print(f'note: {rel(path)} {label}: {object_label(obj)} has apiVersion {obj.get("apiVersion")!r}, '
                      f'not {API_VERSION}: skipped (the compiler skips it too)', file=sys.stderr)
                continue
            errs = object_errors(validators, obj)
            for p, m in errs:
                problem(f'{rel(path)} ({label}) {object_label(obj)}', f'{p}: {m}')
            if not errs:
                valid += 1
                counts[top] = counts.get(top, 0) + 1
    return valid, counts


# ---------------------------------------------------------------------------------------------
# Built-in cases: the test must be able to fail

BASE_LRP = {
    'apiVersion': API_VERSION, 'kind': 'LocalRedirectPolicy', 'metadata': {'name': 'base-lrp'},
    'spec': {
        'frontend': {'addressMatcher': {'ip': '169.254.20.10', 'toPorts': [
            {'port': '53', 'protocol': 'UDP', 'name': 'dns'}, {'port': 53, 'protocol': 'TCP', 'name': 'dns-tcp'}]}},
        'backend': {'endpointSelector': {'matchLabels': {'k8s-app': 'node-local-dns'}},
                    'toPorts': [{'port': '53', 'protocol': 'UDP', 'name': 'dns'}, {'port': '53', 'protocol': 'TCP', 'name': 'dns-tcp'}]},
        'skipRedirectFromBackend': True,
        'redirectRateLimit': 1000,
    },
}
BASE_BP = {
    'apiVersion': API_VERSION, 'kind': 'BalancingPolicy', 'metadata': {'name': 'base-bp'},
    'spec': {
        'enabled': True,
        'frontend': {'serviceMatcher': {'namespace': 'default', 'serviceName': 'web', 'toPorts': [{'port': 80, 'protocol': 'TCP'}]}},
        'backend': {'serviceEndpoint': {'endpointSelector': {'matchExpressions': [{'key': 'app', 'operator': 'In', 'values': ['web']}]},
                                        'toPorts': [{'port': '8080', 'protocol': 'TCP'}], 'redirectMode': 'hostPort'}},
        'config': {'nodeLabelSelector': {'matchLabels': {'zone': 'a'}}, 'enableOutCluster': False},
    },
}
ADDR_BACKEND = {'addressEndpoint': {'addresses': ['192.0.2.10', '2001:db8::10'], 'toPorts': [{'port': 8080, 'protocol': 'TCP'}]}}
SVC_MATCHER = {'serviceName': 'kube-dns', 'namespace': 'kube-system'}


def edit(base, path, value=None, delete=False):
    """A copy of base with the dotted path (list indexes as numbers) set to value, or deleted."""
    obj = copy.deepcopy(base)
    keys = [int(k) if k.isdigit() else k for k in path.split('.')]
    cur = obj
    for k in keys[:-1]:
        cur = cur[k]
    if delete:
        del cur[keys[-1]]
    else:
        cur[keys[-1]] = copy.deepcopy(value)
    return obj


AM = 'spec.frontend.addressMatcher'
SE = 'spec.backend.serviceEndpoint'
INVALID = [
    # (what, object, the field the error must be reported at)
    ('both matchers set', edit(BASE_LRP, 'spec.frontend.serviceMatcher', SVC_MATCHER), 'spec.frontend'),
    ('neither matcher set', edit(BASE_LRP, 'spec.frontend', {}), 'spec.frontend'),
    ('port 0', edit(BASE_LRP, AM + '.toPorts.1.port', 0), AM + '.toPorts[1].port'),
    ('port "0"', edit(BASE_LRP, AM + '.toPorts.0.port', '0'), AM + '.toPorts[0].port'),
    ('port 70000', edit(BASE_LRP, AM + '.toPorts.1.port', 70000), AM + '.toPorts[1].port'),
    ('port "70000"', edit(BASE_LRP, 'spec.backend.toPorts.0.port', '70000'), 'spec.backend.toPorts[0].port'),
    ('port "080" (leading zero)', edit(BASE_BP, SE + '.toPorts.0.port', '080'), SE + '.toPorts[0].port'),
    ('port "http" (a name, not a number)', edit(BASE_BP, SE + '.toPorts.0.port', 'http'), SE + '.toPorts[0].port'),
    ('protocol SCTP', edit(BASE_LRP, 'spec.backend.toPorts.0.protocol', 'SCTP'), 'spec.backend.toPorts[0].protocol'),
    ('protocol missing', edit(BASE_BP, SE + '.toPorts.0.protocol', delete=True), SE + '.toPorts[0]'),
    ('redirectMode bogus', edit(BASE_BP, SE + '.redirectMode', 'bogus'), SE + '.redirectMode'),
    ('LRP endpointSelector missing', edit(BASE_LRP, 'spec.backend.endpointSelector', delete=True), 'spec.backend'),
    ('BP endpointSelector missing', edit(BASE_BP, SE + '.endpointSelector', delete=True), SE),
    ('empty addresses', edit(edit(BASE_BP, 'spec.backend', ADDR_BACKEND), 'spec.backend.addressEndpoint.addresses', []),
     'spec.backend.addressEndpoint.addresses'),
    ('redirectRateLimit 0', edit(BASE_LRP, 'spec.redirectRateLimit', 0), 'spec.redirectRateLimit'),
    ('redirectRateLimit "10" (a string)', edit(BASE_BP, 'spec.redirectRateLimit', '10'), 'spec.redirectRateLimit'),
    ('serviceEndpoint and addressEndpoint', edit(BASE_BP, 'spec.backend.addressEndpoint', ADDR_BACKEND['addressEndpoint']), 'spec.backend'),
    ('neither serviceEndpoint nor addressEndpoint', edit(BASE_BP, 'spec.backend', {}), 'spec.backend'),
    ('addressMatcher without toPorts', edit(BASE_LRP, AM + '.toPorts', delete=True), AM),
    ('addressMatcher with empty toPorts', edit(BASE_LRP, AM + '.toPorts', []), AM + '.toPorts'),
    ('backend toPorts missing', edit(BASE_LRP, 'spec.backend.toPorts', delete=True), 'spec.backend'),
    ('two unnamed ports', edit(BASE_LRP, 'spec.backend.toPorts', [{'port': 53, 'protocol': 'UDP'}, {'port': 53, 'protocol': 'TCP'}]),
     'spec.backend.toPorts'),
    ('invalid IPv4 address', edit(BASE_LRP, AM + '.ip', '300.1.2.3'), AM + '.ip'),
    ('IPv4 address with a leading zero', edit(BASE_LRP, AM + '.ip', '169.254.020.10'), AM + '.ip'),
    ('IPv6 address with a zone', edit(edit(BASE_BP, 'spec.backend', ADDR_BACKEND), 'spec.backend.addressEndpoint.addresses.1', 'fe80::1%eth0'),
     'spec.backend.addressEndpoint.addresses[1]'),
    ('serviceMatcher without serviceName', edit(BASE_BP, 'spec.frontend.serviceMatcher.serviceName', delete=True), 'spec.frontend.serviceMatcher'),
    ('operator In without values', edit(BASE_BP, SE + '.endpointSelector.matchExpressions.0.values', delete=True),
     SE + '.endpointSelector.matchExpressions[0]'),
    ('operator Exists with values', edit(BASE_BP, SE + '.endpointSelector.matchExpressions.0.operator', 'Exists'),
     SE + '.endpointSelector.matchExpressions[0]'),
    ('operator Bogus', edit(BASE_BP, SE + '.endpointSelector.matchExpressions.0.operator', 'Bogus'),
     SE + '.endpointSelector.matchExpressions[0].operator'),
    ('matchLabels value not a string', edit(BASE_LRP, 'spec.backend.endpointSelector.matchLabels.k8s-app', 1),
     'spec.backend.endpointSelector.matchLabels.k8s-app'),
    ('enabled "yes" (a string)', edit(BASE_BP, 'spec.enabled', 'yes'), 'spec.enabled'),
    ('enableOutCluster "false" (a string)', edit(BASE_BP, 'spec.config.enableOutCluster', 'false'), 'spec.config.enableOutCluster'),
    ('skipRedirectFromBackend on a BalancingPolicy', edit(BASE_BP, 'spec.skipRedirectFromBackend', True), 'spec'),
    ('misspelt field redirectRatelimit', edit(BASE_LRP, 'spec.redirectRatelimit', 5), 'spec'),
    ('spec missing', edit(BASE_LRP, 'spec', delete=True), '(object)'),
]
VALID = [
    ('IPv6 addressMatcher, integer port, unnamed single ports',
     edit(edit(BASE_LRP, AM, {'ip': 'fd00::a', 'toPorts': [{'port': 53, 'protocol': 'UDP'}]}),
          'spec.backend.toPorts', [{'port': '5353', 'protocol': 'UDP'}])),
    ('serviceMatcher without namespace and toPorts; Exists; nodeProxy',
     edit(edit(edit(BASE_BP, 'spec.frontend', {'serviceMatcher': {'serviceName': 'web'}}),
               SE + '.endpointSelector', {'matchExpressions': [{'key': 'app', 'operator': 'Exists'}]}), SE + '.redirectMode', 'nodeProxy')),
    ('addressEndpoint of both families, limits at their maximum',
     edit(edit(BASE_BP, 'spec.backend', ADDR_BACKEND), 'spec.redirectRateLimit', 4294967295)),
    ('empty selectors, port 65535, IPv4-mapped IPv6, status present',
     edit(edit(edit(edit(BASE_LRP, 'spec.backend.endpointSelector', {}), 'spec.config', {'nodeLabelSelector': {}}),
               AM, {'ip': '::ffff:169.254.20.10', 'toPorts': [{'port': '65535', 'protocol': 'TCP', 'name': 'p'}]}), 'status', {'x': 1})),
    ('disabled, serviceMatcher with an empty toPorts list',
     edit(edit(BASE_LRP, 'spec.enabled', False), 'spec.frontend', {'serviceMatcher': {'serviceName': 'kube-dns', 'toPorts': []}})),
]


def self_test(validators):
    rejected = 0
    for what, obj, at in INVALID:
        errs = object_errors(validators, obj)
        if not errs:
            problem('built-in invalid objects', f'{what}: accepted, but the CRD must reject it')
        elif at not in [p for p, _ in errs]:
            problem('built-in invalid objects', f'{what}: rejected at {", ".join(p for p, _ in errs)}, expected at {at}')
        else:
            rejected += 1
    for what, obj in [('the LocalRedirectPolicy base', BASE_LRP), ('the BalancingPolicy base', BASE_BP)] + VALID:
        for p, m in object_errors(validators, obj):
            problem('built-in valid objects', f'{what}: {p}: {m}')
    return rejected


def main(argv):
    validators = load_crds()
    if problems:
        # Without sound CRDs every object check below would be noise.
        for where, m in problems:
            print(f'{where}: {m}', file=sys.stderr)
        print(f'FAILED: {len(problems)} problem(s) in the CRDs', file=sys.stderr)
        return 1
    valid, counts = validate_files(validators, argv[1:] or DEFAULT_INPUTS)
    rejected = self_test(validators)
    if problems:
        for where, m in problems:
            print(f'{where}: {m}', file=sys.stderr)
        print(f'FAILED: {len(problems)} violation(s)', file=sys.stderr)
        return 1
    where = ', '.join(f'{n} in {d}' for d, n in sorted(counts.items())) or 'no policy objects found'
    print(f'{valid} objects valid, {rejected} invalid objects rejected '
          f'({where}; {len(VALID) + 2} built-in valid variants accepted)')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
