"""model-index.yml, the recipe metafiles and configs/mgd/README.md list
every recipe config, and nothing that does not exist."""
import glob
import os.path as osp

import yaml

from conftest import REPO_ROOT


def load_yaml(path):
    with open(osp.join(REPO_ROOT, path)) as f:
        return yaml.safe_load(f)


def recipe_configs(folder):
    # The Fashion-MNIST demonstration is not one of the paper's recipes.
    return sorted(
        osp.relpath(path, REPO_ROOT)
        for path in glob.glob(osp.join(REPO_ROOT, folder, '*.py'))
        if 'fashion-mnist' not in osp.basename(path))


def metafiles():
    return load_yaml('model-index.yml')['Import']


def test_model_index_imports_every_recipe_folder():
    folders = {osp.dirname(path) for path in metafiles()}
    assert folders == {'configs/mgd'}
    for path in metafiles():
        assert osp.isfile(osp.join(REPO_ROOT, path)), path


def test_metafile_lists_every_config_once():
    for path in metafiles():
        meta = load_yaml(path)
        collections = {c['Name']: c for c in meta['Collections']}
        for collection in collections.values():
            assert osp.isfile(osp.join(REPO_ROOT, collection['README']))
            assert collection['Paper']['URL'].startswith('https://')
        listed = [model['Config'] for model in meta['Models']]
        assert sorted(listed) == recipe_configs(osp.dirname(path))
        for model in meta['Models']:
            assert model['Name'] == osp.splitext(
                osp.basename(model['Config']))[0]
            assert model['In Collection'] in collections
            # We publish no weights; every result is the paper's.
            assert 'Weights' not in model
            for result in model.get('Results', []):
                assert all(
                    name.endswith('(paper)')
                    for name in result['Metrics']), model['Name']


def test_readme_links_every_config():
    for path in metafiles():
        folder = osp.dirname(path)
        with open(osp.join(REPO_ROOT, folder, 'README.md')) as f:
            readme = f.read()
        for config in recipe_configs(folder):
            assert f'({osp.basename(config)})' in readme, config
