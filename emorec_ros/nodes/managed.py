"""
The managed (lifecycle) node all emorec_ros nodes are, and the ``main`` that runs one.

Each node declares its parameters in ``__init__`` (unconfigured: nothing loaded), loads models
and warms up in ``configure``, subscribes and publishes in ``activate``, stops all work in
``deactivate`` and frees memory in ``cleanup``; ``shutdown`` works from every state. With the
``autostart`` parameter the node configures and activates itself, as the launch file asks.

Parameters can change while the node runs unless they are structural (declared read-only): a
value out of its range, of the wrong type or refused by the node's own check is refused with a
reason and the old value is kept; an accepted one is applied at once (``apply_parameters``).

``run_node`` ends the process within about two seconds of SIGINT or SIGTERM, whatever the node
is doing: pending service calls are answered first, then the node shuts down and exits with
status 0. A bad parameter at start is one fatal line and exit status 1.
"""
from __future__ import annotations

from collections.abc import Callable
import os
import signal
import sys
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emorec_ros.nodes.common import lifecycle_status, publish_diagnostics
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle, ParameterException
from rclpy.executors import (Executor, ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions

#: What a parameter check returns: None when the value is fine, else the reason it is not.
Check = Callable[[Any], 'str | None']

#: Seconds that shutdown waits for a running transition (e.g. the gesture node's warm-up) before
#: the process exits without it; with the rest this keeps a stop under two seconds.
STOP_WAIT_S = 0.5


class StartupError(RuntimeError):
    """The node cannot be configured; the reason is already logged."""


class ParameterError(ValueError):
    """A parameter's start value is refused by the node's own check."""


class ManagedNode(LifecycleNode):
    """
    A lifecycle node with validated runtime parameters and an ``autostart`` parameter.

    Subclasses implement ``configure`` / ``activate`` / ``deactivate`` / ``cleanup`` (raise
    StartupError from ``configure`` to fail it), and ``apply_parameters`` for runtime changes.
    ``stopping`` is set once the process is asked to end, so long service calls can give up.
    """

    #: The node's default name (subclasses set it).
    NAME = ''
    #: Whether the node reports on /diagnostics (once a second, from the start, in every state).
    DIAGNOSTICS = False

    def __init__(self, **kwargs) -> None:
        super().__init__(self.NAME, **kwargs)
        self._checks: dict[str, Check] = {}
        self._declared = False  # until declared_all(): no cross-checks, nothing to apply yet
        self._transition_lock = threading.Lock()
        self.stopping = threading.Event()
        self.autostart = self.declare_parameter(
            'autostart', False, ParameterDescriptor(
                description='configure and activate at start (read-only)', read_only=True)).value
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._parameters_set)
        if self.DIAGNOSTICS:
            self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
            self.create_timer(1.0, self._publish_diagnostics,
                              callback_group=MutuallyExclusiveCallbackGroup())

    # --- diagnostics -------------------------------------------------------------------------
    def diagnostic_status(self) -> DiagnosticStatus:
        """Return the node's status while it is active."""
        raise NotImplementedError

    def _publish_diagnostics(self) -> None:
        state = self.state
        status = self.diagnostic_status() if state == 'active' else lifecycle_status(self, state)
        publish_diagnostics(self, self._diagnostics, status)

    # --- parameters ------------------------------------------------------------------------
    def declare(self, name: str, default: Any, description: str, low: float | None = None,
                high: float | None = None, read_only: bool = False,
                check: Check | None = None) -> Any:
        """
        Declare a parameter with its description (and range, for numbers); return its value.

        ``read_only`` parameters are structural: they are set at start only, and say so in their
        description. ``check`` is run on the start value and on every change.
        """
        if read_only:
            description += ' (read-only: set at start)'
        descriptor = ParameterDescriptor(description=description, read_only=read_only)
        if low is not None and high is not None:
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                raise TypeError(f'{name}: a range needs a numeric default')
            if isinstance(default, int):
                descriptor.integer_range = [
                    IntegerRange(from_value=int(low), to_value=int(high), step=1)]
            else:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high))]
        value = self.declare_parameter(name, default, descriptor).value
        if check is not None:
            self._checks[name] = check
            reason = check(value)
            if reason:
                raise ParameterError(f"parameter '{name}' = {value!r}: {reason}")
        return value

    def declared_all(self) -> None:
        """Check the start values together; from now on, changes are checked and applied."""
        reason = self.check_parameters({})
        if reason:
            raise ParameterError(reason)
        self._declared = True

    def value(self, name: str) -> Any:
        """Return a parameter's current value."""
        return self.get_parameter(name).value

    def check_parameters(self, values: dict[str, Any]) -> str | None:
        """Return why these new values (name -> value) cannot go together, or None."""
        return None

    def apply_parameters(self, values: dict[str, Any]) -> None:
        """Use new parameter values (name -> value), already checked and set."""

    def _check_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            check = self._checks.get(parameter.name)
            reason = check(parameter.value) if check else None
            if reason:
                return SetParametersResult(
                    successful=False, reason=f'{parameter.name} = {parameter.value!r}: {reason}')
        reason = self.check_parameters({p.name: p.value for p in parameters}) \
            if self._declared else None
        return SetParametersResult(successful=not reason, reason=reason or '')

    def _parameters_set(self, parameters: list[Parameter]) -> None:
        if not self._declared:
            return
        values = {p.name: p.value for p in parameters}
        self.apply_parameters(values)
        self.get_logger().info(
            'parameters set: ' + ', '.join(f'{k} = {v!r}' for k, v in values.items()))

    # --- lifecycle ---------------------------------------------------------------------------
    def configure(self) -> None:
        """Load models and warm up (no subscriptions yet); raise StartupError to fail."""

    def activate(self) -> None:
        """Subscribe and start timers."""

    def deactivate(self) -> None:
        """Stop all work: destroy subscriptions and timers; return once no callback runs."""

    def cleanup(self) -> None:
        """Free what ``configure`` loaded."""

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition_lock:
            try:
                self.configure()
            except StartupError:
                self._cleanup_quietly()
                return TransitionCallbackReturn.FAILURE
            except Exception as e:  # a bug: say what it was, and leave the node unconfigured
                self.get_logger().error(f'configure failed: {type(e).__name__}: {e}')
                self._cleanup_quietly()
                return TransitionCallbackReturn.FAILURE
        self.get_logger().info('configured')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition_lock:
            self.activate()
        self.get_logger().info('active')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition_lock:
            self.deactivate()
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition_lock:
            self.cleanup()
        self.get_logger().info('cleaned up')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._transition_lock:
            if state.label == 'active':
                self.deactivate()
            if state.label in ('active', 'inactive'):
                self.cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error(f'error while {state.label}: cleaning up')
        self._cleanup_quietly()
        return TransitionCallbackReturn.SUCCESS

    def _cleanup_quietly(self) -> None:
        try:
            self.deactivate()
            self.cleanup()
        except Exception as e:  # best effort: the node is already failing
            self.get_logger().error(f'clean-up failed: {type(e).__name__}: {e}')

    @property
    def state(self) -> str:
        """Return the lifecycle state's label: 'unconfigured', 'inactive', 'active', ..."""
        return self._state_machine.current_state[1]

    def start(self) -> bool:
        """Configure and activate (what ``autostart`` does); return whether the node is active."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def stop(self) -> bool:
        """
        Shut down from any state; return False when a transition still runs after STOP_WAIT_S.

        ``stopping`` is set first, so that pending service calls answer and return.
        """
        self.stopping.set()
        if not self._transition_lock.acquire(timeout=STOP_WAIT_S):
            return False
        self._transition_lock.release()
        if self.state in ('unconfigured', 'inactive', 'active'):
            self.trigger_shutdown()
        return True


def run_node(node_class: type[ManagedNode], args: list[str] | None = None,
             threads: int = 1) -> int:
    """
    Run a node until SIGINT or SIGTERM, then end the process with its exit status.

    rclpy's own signal handlers are off: they would shut the context down at once, so a pending
    service call could not be answered. Here a signal only sets an event; the node then shuts
    down while the executor still spins (answers go out), and the executor stops after it.
    ``threads`` > 1 spins a MultiThreadedExecutor, for nodes whose service calls wait long
    (gesture_emotion's recordings); the others spin a SingleThreadedExecutor, which wakes once
    per callback: rclpy's MultiThreadedExecutor woke 300-1900 times a second at 30 images per
    second and cost body_pose 3 ms and face_emotion 1.5-3 ms of CPU per image.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        try:
            node = node_class()
        except (ParameterException, ParameterError) as e:
            rclpy.logging.get_logger(node_class.NAME).fatal(f'bad parameter: {e}')
            return 1  # nothing heavy is loaded yet: a normal exit
        executor = (MultiThreadedExecutor(num_threads=threads) if threads > 1
                    else SingleThreadedExecutor())
        executor.add_node(node)
        spinner = threading.Thread(target=_spin, args=(executor,), daemon=True)
        spinner.start()
        failed = threading.Event()
        if node.autostart:
            threading.Thread(target=_autostart, args=(node, stop, failed), daemon=True).start()
        while not stop.wait(0.05) and spinner.is_alive():
            pass
        for signum in (signal.SIGINT, signal.SIGTERM):  # launch repeats its SIGINT: one is enough
            signal.signal(signum, signal.SIG_IGN)
        started = time.monotonic()
        if not node.stop():
            node.get_logger().warning('still starting up: exiting without waiting for it')
            sys.stdout.flush()
            os._exit(1 if failed.is_set() else 0)
        executor.shutdown(timeout_sec=max(0.1, STOP_WAIT_S - (time.monotonic() - started)))
        # A thread still inside the executor when the process exits aborts it (C++ terminate).
        spinner.join(timeout=max(0.1, STOP_WAIT_S - (time.monotonic() - started)))
        if not spinner.is_alive():  # else the process ends with the node still in use
            node.destroy_node()
        status = 1 if failed.is_set() else 0
    finally:
        rclpy.try_shutdown()
    # Everything is shut down; the interpreter's own teardown of MediaPipe, LiteRT and numba
    # would take another second.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _autostart(node: ManagedNode, stop: threading.Event, failed: threading.Event) -> None:
    try:
        started = node.start()
    except Exception as e:  # never leave a half-started node running silently
        node.get_logger().fatal(f'start failed: {type(e).__name__}: {e}')
        started = False
    if not started and not node.stopping.is_set():
        failed.set()
        stop.set()


def _spin(executor: Executor) -> None:
    try:
        executor.spin()
    except (ExternalShutdownException, InvalidHandle):  # the node is being destroyed: done
        pass
