"""Validates OCSF events (NDJSON on stdin) against the official OCSF 1.3.0 schema.

The checks are pydantic-ocsf's models for 1.3.0 (generated from the official schema: attribute
types, required attributes, enum ids and their captions) plus what those models leave open:
attributes a class or object does not define (the models accept extras), the class's
`at_least_one` constraints, and the attributes the models take from includes and profiles
(`time`, `start_time`, the classification ids, security_control's `action`/`disposition`),
allowed only where the 1.3.0 class has them. Prints one JSON line per event:
{"index": n, "class_uid": c, "errors": [...]}; exit status 0 either way (the caller asserts).
"""
import json
import sys

from pydantic import BaseModel, ValidationError
import ocsf
from ocsf.v1_3_0 import events as ev

SCHEMA = json.load(open(ocsf.__path__[0] + '/schemas/v1_3_0.json'))
CLASSES = {6005: ('DatastoreActivity', 'datastore_activity'), 1007: ('ProcessActivity', 'process_activity'),
           6003: ('ApiActivity', 'api_activity'), 3002: ('Authentication', 'authentication')}
# The base event's occurrence and classification includes, which the generated models omit.
BASE_INCLUDED = {'time', 'start_time', 'end_time', 'count', 'duration', 'timezone_offset',
                 'class_uid', 'class_name', 'category_uid', 'category_name', 'type_uid', 'type_name',
                 'activity_id', 'activity_name'}
# The security_control profile (1.3.0), legal only on classes that list the profile.
SECURITY_CONTROL = {'action', 'action_id', 'disposition', 'disposition_id', 'attacks', 'authorizations',
                    'firewall_rule', 'malware', 'risk_level', 'risk_level_id', 'risk_score', 'risk_details'}
# Parents whose profiles a class inherits (the 1.3.0 categories of the classes Agate emits).
PARENT = {'datastore_activity': 'application', 'api_activity': 'application', 'process_activity': 'system', 'authentication': 'iam'}


def profiles_of(name):
    out = set()
    while name:
        out |= set(SCHEMA['events'].get(name, {}).get('profiles') or [])
        name = PARENT.get(name) or ('base_event' if name != 'base_event' else None)
    return out


def snake(name):
    return ''.join('_' + c.lower() if c.isupper() and i > 0 else c.lower() for i, c in enumerate(name))


def object_constraints(model, path):
    """Each nested object's own constraints (e.g. process: at least one of pid, uid)."""
    obj = SCHEMA['objects'].get(snake(type(model).__name__), {})
    errors = []
    for kind, group in (obj.get('constraints') or {}).items():
        have = [a for a in group if getattr(model, a, None) not in (None, '', [], {})]
        if kind == 'at_least_one' and not have:
            errors.append(f'{path or "."}: at least one of {group} is required')
        if kind == 'just_one' and len(have) != 1:
            errors.append(f'{path or "."}: exactly one of {group} is required')
    return errors


def extras(model, path):
    """Attributes the schema does not define, anywhere under `model` (unmapped is free-form)."""
    found = []
    for key in (model.model_extra or {}):
        found.append(f'{path}{key}')
    for name in type(model).model_fields:
        if name == 'unmapped':
            continue
        value = getattr(model, name, None)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, BaseModel):
                found += extras(item, f'{path}{name}.')
    return found


def nested_constraints(model, path):
    errors = []
    for name in type(model).model_fields:
        if name == 'unmapped':
            continue
        value = getattr(model, name, None)
        for item in (value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                errors += object_constraints(item, f'{path}{name}') + nested_constraints(item, f'{path}{name}.')
    return errors


def device_type_ids():
    """device.type_id's enum: the 1.3.0 bundle lost it to an include, so it comes from the oldest bundle that kept it."""
    import glob
    for path in sorted(glob.glob(ocsf.__path__[0] + '/schemas/v1_*.json')):
        enum = json.load(open(path))['objects'].get('device', {}).get('attributes', {}).get('type_id', {}).get('enum')
        if enum:
            return {0, 99} | {int(k) for k in enum}
    return {0, 99}


DEVICE_TYPE_IDS = device_type_ids()


def check(event):
    errors = []
    cls = CLASSES.get(event.get('class_uid'))
    if cls is None:
        return [f'class_uid {event.get("class_uid")} is not a class this validator knows']
    model_name, schema_name = cls
    model = getattr(ev, model_name)
    event = json.loads(json.dumps(event))
    device = event.get('device')
    if isinstance(device, dict) and 'type_id' in device:
        # Checked here against the full enum, then shown to the model as a value it accepts.
        if device['type_id'] not in DEVICE_TYPE_IDS:
            errors.append(f'device.type_id {device["type_id"]} is not a device type')
        device['type_id'] = 0
        device.pop('type', None)
    try:
        parsed = model.model_validate(event)
    except ValidationError as err:
        return errors + [f'{"/".join(map(str, e["loc"]))}: {e["msg"]}' for e in err.errors()]
    errors += nested_constraints(parsed, '')
    allowed_top = set(BASE_INCLUDED)
    profiles = profiles_of(schema_name)
    if 'security_control' in profiles:
        allowed_top |= SECURITY_CONTROL
    for name in extras(parsed, ''):
        if name not in allowed_top:
            errors.append(f'{name}: not an attribute of {model_name} in OCSF 1.3.0')
    group = (SCHEMA['events'][schema_name].get('constraints') or {}).get('at_least_one')
    if group and not any(event.get(a) not in (None, '', {}, []) for a in group):
        errors.append(f'at least one of {group} is required')
    for required in ('time', 'class_uid', 'category_uid', 'type_uid', 'activity_id', 'severity_id'):
        if not isinstance(event.get(required), int):
            errors.append(f'{required}: required integer')
    if event.get('type_uid') != event.get('class_uid', 0) * 100 + event.get('activity_id', 0):
        errors.append('type_uid must be class_uid * 100 + activity_id')
    profile_list = (event.get('metadata') or {}).get('profiles') or []
    for p in profile_list:
        if p not in profiles:
            errors.append(f'metadata.profiles names {p}, which {model_name} does not support in 1.3.0')
    return errors


for i, line in enumerate(sys.stdin):
    if not line.strip():
        continue
    e = json.loads(line)
    print(json.dumps({'index': i, 'class_uid': e.get('class_uid'), 'errors': check(e)}), flush=True)
