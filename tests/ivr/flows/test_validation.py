"""Every refusal of the compiler and validator, with the exact line:col it reports."""

from __future__ import annotations

from flow_helpers import errors_of


def test_given_a_sound_flow_when_compiled_then_no_errors(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello:
            type: play
            prompts: welcome_12345
            next: agent
          agent:
            type: queue
            queue: general
        """) == []


def test_given_an_unknown_node_type_then_it_is_reported_at_the_type_value(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello:
            type: plya
            prompts: welcome_12345
          agent: {type: queue, queue: general}
        """) == ["3:11: unknown node type 'plya' (did you mean 'play'?); known: branch, collect, goto, hangup, menu, "
                 "out_of_scope, play, queue, say, session_prompt, set, subflow, ticket_query, transfer"]


def test_given_unknown_keys_then_each_is_reported_at_the_key(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        titel: x
        nodes:
          hello:
            type: play
            prompts: welcome_12345
            nxet: agent
            next: agent
          agent: {type: queue, queue: general, prio: 3}
        """) == ["1:1: unknown key 'titel'", "6:5: unknown key 'nxet'", "8:40: unknown key 'prio'"]


def test_given_a_dangling_target_then_it_is_reported_at_the_target_with_a_suggestion(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello:
            type: menu
            prompt: main_menu
            keys: {"0": agnet}
            on_exhausted: nowhere
          agent: {type: queue, queue: general}
        """) == [
        "5:17: 'agnet' is not a node in this flow (did you mean 'agent'?)",
        "6:19: 'nowhere' is not a node in this flow",
    ]


def test_given_an_unreachable_node_then_it_is_reported_at_its_id(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello: {type: play, prompts: welcome_12345, next: agent}
          orphan: {type: hangup}
          agent: {type: queue, queue: general}
        """) == ["3:3: node 'orphan' is unreachable from the start 'hello'"]


def test_given_a_path_that_never_ends_then_each_node_on_it_is_reported(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello:
            type: menu
            prompt: main_menu
            keys: {"1": spin, "0": agent}
            on_exhausted: agent
          spin: {type: goto, to: spin2}
          spin2: {type: goto, to: spin}
          agent: {type: queue, queue: general}
        """) == [
        "7:3: no path from node 'spin' ever ends (add a queue, transfer or hangup)",
        "8:3: no path from node 'spin2' ever ends (add a queue, transfer or hangup)",
    ]


def test_given_a_goto_loop_with_an_exit_but_no_bound_then_it_is_an_unbounded_loop(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello: {type: play, prompts: welcome_12345, next: check}
          check:
            type: branch
            cases: [{when: {var: done, equals: "yes"}, goto: agent}]
            else: again
          again: {type: goto, to: hello}
          agent: {type: queue, queue: general}
        """) == ["2:3: unbounded loop hello → check → again → hello: put a menu or a goto with max_times in it"]


def test_given_loops_through_a_menu_or_a_bounded_goto_then_they_are_accepted(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          top:
            type: menu
            prompt: main_menu
            keys: {"1": sub, "2": top, "0": agent}
            on_exhausted: agent
          sub:
            type: menu
            prompt: hrss_menu
            keys: {"0": agent, "1": replay}
            back: top
            on_exhausted: agent
          replay: {type: goto, to: sub, max_times: 2, otherwise: agent}
          agent: {type: queue, queue: general}
        """) == []


def test_given_a_loop_back_through_on_exhausted_then_it_is_unbounded(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          top:
            type: menu
            prompt: main_menu
            keys: {"0": agent}
            on_exhausted: notice
          notice: {type: play, prompts: no_input, next: top}
          agent: {type: queue, queue: general}
        """) == ["2:3: unbounded loop top → notice → top: put a menu or a goto with max_times in it"]


def test_given_missing_prompt_ids_then_each_is_reported_where_named(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          hello:
            type: play
            prompts: [welcome_12345, welcom_12333]
            next: menu
          menu:
            type: menu
            prompt: nosuch_menu
            invalid_prompt: invalid_keys
            keys: {"0": agent}
            on_exhausted: agent
          agent: {type: queue, queue: general, prompt: queue_notic}
        """) == [
        "4:30: prompt 'welcom_12333' is not in the prompt catalog (did you mean 'welcome_12333'?)",
        "8:13: prompt 'nosuch_menu' is not in the prompt catalog (did you mean 'main_menu'?)",
        "9:21: prompt 'invalid_keys' is not in the prompt catalog (did you mean 'invalid_key'?)",
        "12:48: prompt 'queue_notic' is not in the prompt catalog (did you mean 'queue_notice'?)",
    ]


def test_given_a_duplicate_key_then_it_is_reported_at_the_second_one(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          agent: {type: queue, queue: general}
          agent: {type: hangup}
        """) == ["3:3: duplicate key 'agent' (first defined at line 2)"]


def test_given_undefined_queue_and_subcenter_then_both_are_reported(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          menu:
            type: menu
            prompt: main_menu
            keys: {"0": agent, "1": tax}
            on_exhausted: agent
          agent: {type: queue, queue: generl}
          tax: {type: transfer, subcenter: taxes}
        """) == [
        "7:31: queue 'generl' is not defined in config/queues.yaml (did you mean 'general'?)",
        "8:36: sub-center 'taxes' is not defined in config/subcenters.yaml (did you mean 'tax'?)",
    ]


def test_given_bad_field_values_then_all_are_reported_in_one_run(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        budget: soon
        nodes:
          ask:
            type: collect
            prompt: enter_id_number
            var: id
            min_digits: 9
            max_digits: 4
            pattern: "[0-9"
            timeout: 3 minutes
            next: agent
            on_exhausted: agent
          when:
            type: branch
            cases: [{when: {time: "25:00-26:00"}, goto: agent}]
            else: agent
          agent: {type: transfer, number: "110", subcenter: tax}
        """) == [
        "1:9: budget: Value error, 'soon' is not a duration (write e.g. 3s, 1.5s or 800ms)",
        "10:14: timeout: Value error, '3 minutes' is not a duration (write e.g. 3s, 1.5s or 800ms)",
        "9:14: pattern: Value error, not a valid regular expression: unterminated character set at position 0",
        "15:27: cases.0.when.time: Value error, '25:00-26:00' is not a time range like 08:30-17:30",
        "17:10: value: Value error, give exactly one of subcenter or number",
    ]


def test_given_a_subflow_to_a_missing_flow_or_in_a_loop_then_they_are_refused(bare_config, catalog):
    from flow_helpers import write_flow

    write_flow(bare_config, """
        nodes:
          go: {type: subflow, flow: t}
        """, name="other")
    assert errors_of(bare_config, catalog, """
        nodes:
          menu:
            type: menu
            prompt: main_menu
            keys: {"0": agent, "1": other, "2": missing}
            on_exhausted: agent
          other: {type: subflow, flow: other}
          missing: {type: subflow, flow: nowhere}
          agent: {type: queue, queue: general}
        """) == [
        "2:29: subflow 't' leads back to 'other': flows may not call each other in a loop",
        "7:32: subflow 'other' leads back to 't': flows may not call each other in a loop",
        "8:34: flow 'nowhere' does not exist in config/flows/ (did you mean 'other'?)",
    ]


def test_given_a_bad_start_then_it_is_reported(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        start: begin
        nodes:
          agent: {type: queue, queue: general}
        """) == ["1:8: start 'begin' is not a node in this flow"]


def test_given_a_menu_without_the_human_key_then_the_lint_refuses_it(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          menu:
            type: menu
            prompt: main_menu
            keys: {"1": agent, "2": sub}
            on_exhausted: agent
          sub:
            type: menu
            prompt: hrss_menu
            keys: {"0": bye, "1": agent}
            on_exhausted: agent
          agent: {type: queue, queue: general}
          bye: {type: hangup, prompt: goodbye}
        """) == [
        "5:11: menu 'menu': key 0 must lead to a human (human_key); it is not mapped",
        "10:17: menu 'sub': key 0 can end without a human (a hangup is reachable from 'bye')",
    ]


def test_given_min_digits_above_max_digits_then_the_collect_is_refused(bare_config, catalog):
    assert errors_of(bare_config, catalog, """
        nodes:
          ask: {type: collect, prompt: enter_id_number, var: id, min_digits: 9, max_digits: 4, next: a, on_exhausted: a}
          a: {type: queue, queue: general}
        """) == ["2:8: value: Value error, min_digits must not exceed max_digits"]


def test_given_a_number_naming_a_missing_flow_then_numbers_yaml_is_blamed(bare_config, catalog):
    from flow_helpers import write_flow
    from ivr.hot_reload import compile_config
    from ivr.core.yamlsource import SourceErrors

    write_flow(bare_config, "nodes:\n  a: {type: queue, queue: general}\n", name="other")
    try:
        compile_config(bare_config, catalog, environ={})
    except SourceErrors as exc:
        assert [str(e) for e in exc.errors] == [f"{bare_config}/numbers.yaml:2:41: number 12345: flow 't' is not in config/flows/"]
    else:
        raise AssertionError("a number naming a missing flow was accepted")
