"""A backfill re-syncs the changes of its interval, even when the flow's cursor is already past them (issue 9 §1).

The backfill is created with Airflow's own backfill API, as ``airflow backfill create --reprocess-behavior
completed`` creates it, over an hour that already ran; its DAG run's tasks then run as the scheduler runs them
(state by state, each task through the Task SDK runner, which gives the task the run type from the database).
"""
from __future__ import annotations

import datetime as dt

import pendulum
import pytest

pytestmark = pytest.mark.integration

FLOW = "customers_company"
CONF = {"full_refresh": False, "dry_run": False, "allow_mass_changes": False}


def _backfill(stack, hour: dt.datetime):
    """Create a backfill of ``hour`` (reprocessing a completed run) and run its DAG runs' tasks; return the runs."""
    from airflow import settings
    from airflow.models.backfill import ReprocessBehavior, _create_backfill
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    dag = stack.dagbag.dags[f"sync_{FLOW}"]
    backfill = _create_backfill(dag_id=dag.dag_id, from_date=hour, to_date=hour, max_active_runs=1, reverse=False,
                                dag_run_conf=CONF, triggering_user_name="test",
                                reprocess_behavior=ReprocessBehavior.COMPLETED)
    session = settings.Session()
    runs = session.scalars(select(DagRun).where(DagRun.backfill_id == backfill.id)).all()
    for dag_run in runs:
        dag_run.dag = DBDagBag().get_dag_for_run(dag_run=dag_run, session=session)
        dag_run.state = DagRunState.RUNNING
        session.commit()
        while dag_run.state == DagRunState.RUNNING:
            session.expire_all()
            schedulable, _ = dag_run.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            for ti in [t for t in dag_run.get_task_instances(session=session) if t.state == TaskInstanceState.SCHEDULED]:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id])
    return runs


def _cursor(stack, system: str) -> dt.datetime:
    return stack.sql("SELECT cursor FROM {s}.cursors WHERE flow = %s AND system = %s", FLOW, system)[0][0]


def test_a_backfill_carries_over_a_change_of_its_interval_the_cursor_has_passed_without_rewinding_the_cursor(stack):
    stack.sandboxes.pogo.seed(companies=2)
    hour = pendulum.now("UTC").start_of("hour").subtract(hours=1)
    # The hour already ran (as a scheduled run would have): a plain backfill would skip it.
    assert stack.dagbag.dags[f"sync_{FLOW}"].test(logical_date=hour, run_conf=CONF).state == "success"
    pogo_id, inv_id = stack.sql("SELECT poweroffice_go_id, invoiced_id FROM {s}.links ORDER BY 1")[0]
    edited = stack.pogo.patch(f"/Customers/{pogo_id}", {"Name": "Endret i perioden AS"})
    # The cursor is already past the edit (as after a lagging read replica): a normal run would not list it.
    ahead = dt.datetime.fromisoformat(edited["LastChangedDateTimeOffset"]) + dt.timedelta(seconds=30)
    stack.sql("UPDATE {s}.cursors SET cursor = %s WHERE flow = %s AND system = 'poweroffice_go' RETURNING 1",
              ahead, FLOW)
    runs = _backfill(stack, hour)
    assert [(str(r.run_type), str(r.state)) for r in runs] == [("backfill", "success")]
    assert stack.invoiced.get(f"/customers/{inv_id}")["name"] == "Endret i perioden AS"
    assert _cursor(stack, "poweroffice_go") == ahead  # the backfill neither rewound nor lost the normal cursor
