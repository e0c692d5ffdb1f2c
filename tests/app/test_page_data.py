"""The page-data layer (resources.py and clinic_wide.py read, actions.py writes) is the pages' only way to data.

Checked by reading every dashboard module's imports (ast), and by using the layer's cache as two users would.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import clinic.vocabulary
from clinic.outcomes import DEFAULT_RULE
from dashboard import resources
from db import bulk
from db.access import AccessDenied, Actor
from db.queries import OutcomeFilter

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"
CORE_LAYER = {"dashboard/resources.py", "dashboard/clinic_wide.py", "dashboard/actions.py"}
# Each capability built on top keeps its own reads and writes beside the core, in one module of the layer.
FEATURE_LAYER = {"dashboard/needling_data.py", "dashboard/diary_data.py", "dashboard/recovery_data.py"}
LAYER = CORE_LAYER | FEATURE_LAYER
# Pages and the widgets they share: they draw what the layer gives them and hand it what the user did.
PAGES_AND_WIDGETS = sorted(
    [*(DASHBOARD / "views").glob("*.py"), DASHBOARD / "app.py", DASHBOARD / "patient_picker.py",
     DASHBOARD / "session_form.py"]
)
DATABASE_LIBRARIES = {"sqlmodel", "sqlalchemy"}


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imports(path: Path) -> list[tuple[str, str]]:
    """Return (module, name) for every name a module imports; (module, "") for a plain `import module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
    return found


def is_a_name_of_data(imported: str) -> bool:
    """Return whether an imported name is a class, an exception or a constant (CapWords or UPPER_CASE), not a
    function or a module."""
    return bool(imported) and not imported.islower()


@pytest.mark.parametrize("path", PAGES_AND_WIDGETS, ids=name)
def test_pages_and_widgets_take_from_db_and_analytics_only_types_and_constants(path):
    wrong = [
        f"{module}.{imported}".rstrip(".")
        for module, imported in imports(path)
        if module.split(".")[0] in {"db", "analytics"} and not is_a_name_of_data(imported)
    ]
    assert wrong == [], f"{name(path)} calls db or analytics itself: ask dashboard.resources or dashboard.actions"


def test_only_the_page_data_layer_opens_database_sessions():
    opening = {
        name(path)
        for path in DASHBOARD.rglob("*.py")
        if any(module.split(".")[0] in DATABASE_LIBRARIES or (module == "db.engine" and imported != "DatabaseBusy")
               for module, imported in imports(path))
    }
    assert CORE_LAYER <= opening <= LAYER, sorted(opening ^ LAYER)


def test_every_cached_loader_has_the_database_its_data_version_and_the_actor_in_its_key():
    modules = [importlib.import_module(layer.removesuffix(".py").replace("/", "."))
               for layer in sorted(LAYER) if (ROOT / layer).exists()]
    cached = {
        f"{module.__name__}.{loader}": inspect.signature(inspect.unwrap(function))
        for module in modules
        for loader, function in vars(module).items()
        if hasattr(function, "__wrapped__") and hasattr(function.__wrapped__, "clear")  # an st.cache_data loader
    }
    assert len(cached) >= 5, sorted(cached)
    assert {loader: list(signature.parameters)[:3] for loader, signature in cached.items()} == {
        loader: ["url", "version", "actor"] for loader in cached
    }


def test_a_record_cached_for_one_patient_is_refused_to_another(seeded_url):
    own = Actor(id=None, username="patient", role="patient", patient_id=1)
    other = Actor(id=None, username="someone", role="patient", patient_id=2)
    episodes, sessions, side_effects = resources.patient_record(own, 1)
    assert not sessions.empty
    with pytest.raises(AccessDenied):
        resources.patient_record(other, 1)
    resources.clear_after_write()


# The technique page's analyses, kept once for everyone allowed to read them (dashboard.background), with arguments.
CLINIC_WIDE = {
    "responders_at_last_session": (OutcomeFilter(), DEFAULT_RULE),
    "safety_tables": (OutcomeFilter(),),
    "responder_analyses": (OutcomeFilter(), DEFAULT_RULE, 100),
    "adjusted_comparison": (OutcomeFilter(), 100),
    "clinician_benchmark": (OutcomeFilter(), 100),
    "episode_outcomes": (OutcomeFilter(), DEFAULT_RULE),
}


def test_every_analysis_kept_for_everyone_is_listed_here():
    source = ast.parse(inspect.getsource(resources))
    sharing = {
        function.name
        for function in source.body
        if isinstance(function, ast.FunctionDef) and not function.name.startswith("_")
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "clinic_wide.clinic_wide"
    }
    assert sharing == set(CLINIC_WIDE)


@pytest.mark.parametrize("loader", CLINIC_WIDE)
def test_an_analysis_kept_for_a_manager_is_refused_to_a_patient(seeded_url, loader):
    manager = Actor(id=None, username="manager", role="manager")
    patient = Actor(id=None, username="patient", role="patient", patient_id=1)
    load, arguments = getattr(resources, loader), CLINIC_WIDE[loader]
    load(manager, *arguments)
    assert resources.analyses_settled(timeout=120)
    assert load(manager, *arguments).value is not None  # computed and kept for the manager
    for outsider in (patient, None):
        with pytest.raises(AccessDenied):
            load(outsider, *arguments)


def test_current_actor_has_one_meaning():
    defined = [
        name(path)
        for path in DASHBOARD.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name == "current_actor"
    ]
    assert defined == ["dashboard/auth.py"]


def test_the_clinics_vocabulary_is_imported_from_clinic_vocabulary_only():
    vocabulary = {word for word in vars(clinic.vocabulary) if word.isupper()}
    wrong = [
        f"{name(path)}: {imported} from {module}"
        for path in DASHBOARD.rglob("*.py")
        for module, imported in imports(path)
        if imported in vocabulary and module != "clinic.vocabulary"
    ]
    assert wrong == []


# -- every AppTest run is checked for an exception (tests/app/conftest.py) ---------------------------------------------


def _page_that_fails() -> None:
    raise RuntimeError("a fault on the page")


def test_a_run_that_shows_an_exception_fails_the_test_that_ran_it():
    with pytest.raises(AssertionError, match="encountered an error"):  # its details are withheld, as in production
        AppTest.from_function(_page_that_fails).run()


@pytest.mark.allow_app_exception
def test_a_test_marked_to_show_an_exception_sees_it():
    at = AppTest.from_function(_page_that_fails).run()
    assert len(at.exception) == 1


def test_no_test_reaches_around_the_checked_run_or_reads_downloads_by_scanning_memory():
    conftest = ROOT / "tests" / "app" / "conftest.py"
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path == Path(__file__):
            continue
        source = path.read_text(encoding="utf-8")
        if "gc.get_objects" in source:
            wrong.append(f"{name(path)} scans gc.get_objects()")
        if path != conftest and "._run" in source and "AppTest" in source:
            wrong.append(f"{name(path)} calls AppTest._run")
        if "streamlit.testing" in source and path.parent != conftest.parent:
            wrong.append(f"{name(path)} runs AppTests outside tests/app, where no run is checked")
    assert wrong == []


def test_an_older_copy_of_the_database_restored_gets_its_analyses_computed_again(seeded_url, monkeypatch):
    manager = Actor(id=None, username="manager", role="manager")
    arguments = CLINIC_WIDE["safety_tables"]
    resources.safety_tables(manager, *arguments)
    assert resources.analyses_settled(timeout=120)
    computed = resources.safety_tables(manager, *arguments).as_of
    newest = bulk.highest_id
    monkeypatch.setattr(bulk, "highest_id", lambda session, table: newest(session, table) - 1)  # the trail went back
    resources.safety_tables(manager, *arguments)
    assert resources.analyses_settled(timeout=120)
    assert resources.safety_tables(manager, *arguments).as_of > computed
