"""docs/model_zoo.md is generated from the registry (python -m cmpese.reproduce --write-docs)
and this test fails when it is stale.

Measuring parameters and FLOPs of all zoo names takes about a minute on this CPU, so the test
measures a sample spread over the families and reads the other names' figures back from the
page; every other cell (names, units, papers, table rows, printed figures, presets) is
regenerated from the registry and must match. A name added to or removed from the registry
fails the test too."""
import os

import pytest

from cmpese.model_zoo import get_model, get_model_info, get_model_list
from cmpese.papers import reproduce as rp
from cmpese.tools.complexity import count_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, 'docs', 'model_zoo.md')
SAMPLE = ('cmpe_se_preresnet20_1x1', 'ini_preresnet164_square_3', 'se_wrn16_8',
          'res_se_net20', 'ini_allcnn_square_1', 'se_resnet50')


def _page():
    with open(PAGE) as f:
        return f.read()


def test_model_zoo_page_is_current():
    text = _page()
    on_page = rp.complexity_from_page(text)
    assert sorted(on_page) == get_model_list(), 'docs/model_zoo.md lists other names than ' \
        'the registry: run python -m cmpese.reproduce --write-docs'

    def complexity(name):
        return rp.model_complexity(name) if name in SAMPLE else on_page[name]
    assert text == rp.model_zoo_markdown(complexity=complexity), (
        'docs/model_zoo.md is stale: run python -m cmpese.reproduce --write-docs')


@pytest.mark.parametrize('name', ['cmpe_se_preresnet20_1x1', 'res_se_net20', 'se_allcnn'])
def test_graph_parameter_count_is_the_networks(name):
    """The page counts parameters on the symbol graph; they are the network's trainable
    parameters (BN running statistics excluded), as docs/parameters.md counts them."""
    params, flops = rp.model_complexity(name)
    assert params == count_params(get_model(name))
    assert flops > params


def test_page_rows_carry_the_registry_metadata():
    text = _page()
    for name in ('cmpe_se_wrn28_10_1x1', 'res_se_net44', 'ini_resnet50_mix_5_d_spa4'):
        line = [l for l in text.splitlines() if l.startswith('| `%s` |' % name)][0]
        info = get_model_info(name)
        for dataset, preset in info.presets.items():
            assert preset in line and dataset in line
        assert (info.unit or '') in line
    line = [l for l in text.splitlines() if l.startswith('| `cmpe_se_wrn28_10_1x1` |')][0]
    assert ('CMPE-SE Table 2 "CMPE-SE-WRN-28-10 1x1"; CMPE-SE Table 3 "CMPE-SE-WRN-28-10 1x1"'
            in line)
    assert '36.9M (CMPE-SE Table 2), 36.92M (CMPE-SE Table 3)' in line
    line = [l for l in text.splitlines() if l.startswith('| `ini_wrn28_10_mix_5_d` |')][0]
    assert '5.268G (InI Table IV)' in line
