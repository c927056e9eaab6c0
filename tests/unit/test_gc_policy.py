import gc

from gateway import gc_policy


def test_settle_heap_freezes_start_up_and_collects_the_young_less_often_once() -> None:
    before = gc.get_threshold()
    try:
        gc_policy._settled = False
        gc_policy.settle_heap()
        assert gc.get_threshold() == (gc_policy.YOUNG_THRESHOLD, before[1], before[2])
        frozen = gc.get_freeze_count()
        assert frozen > 0
        gc_policy.settle_heap()  # a second app in this process freezes nothing more
        # (The count may drop: a frozen object that dies leaves the permanent generation.
        # A second freeze would add every object made since the first.)
        assert gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
