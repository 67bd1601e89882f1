"""The claims of AlignFlow (papers/alignflow.txt) and the runs that check them."""

from __future__ import annotations

from experiments.claims.schema import MACHINERY, Claim, Row, Run, not_run
from harness.verdicts import Ordering, Value

_MAPS = (('data.root', 'maps'),)
# Maps at the paper's 64x64 (App. B.1); its 1,096 training pairs give 100 validation pairs,
# its 1,098 val/ pairs are the test pairs.
_ON_MAPS = (('data.options.size', 64), ('data.splits', (996, 100, 1098)))
# The paper-scale models (32x32, 3 scales, App. B.1 widths) timed here over 20-30 steps
# (`configs/alignflow_mnist.py:paper_scale`, one core of the 2-core CPU, the other busy).
_PAPER_SCALE_COST = ('measured here: a hybrid step of one seed takes about 18 s (0.054 steps/s), '
                     'a CycleGAN step of 3 seeds side by side about 15 s, so 25,000 steps are '
                     'about 5 days a model and seed on this CPU: a GPU run; 3 seeds side by '
                     'side exceed 24 GB in training (the CPU convolutions keep their image '
                     'patches for the gradient)')
ALIGNFLOW_MNIST = Run(
    'alignflow_mnist', 'configs/alignflow_mnist.py', paper_variant='paper_scale',
    fast=(('data.options.size', 8), ('data.splits', (400, 100, 100)),
          ('train.flows.num_steps', 100), ('lams', (1e-3,))),
    fast_note='8x8 digits (config: 16x16), 400 training and 100 test pairs (config: 800 and '
              '200), 100 steps (config: 2000), lam 1e-3 only',
    fast_seeds=3, paper_seeds=3,
    paper_cost='32x32, 3 scales, 25,000 steps for each of 6 models: ' + _PAPER_SCALE_COST,
    paper_data=_MAPS, on_paper_data=_ON_MAPS)
_HYBRID_AND_CYCLEGAN_FAST = (
    ('data.options.size', 8), ('data.splits', (400, 50, 50)), ('train.flows.num_steps', 100),
    ('modes', ('hybrid', 'cyclegan')), ('lams', (1e-2,)))
_HYBRID_AND_CYCLEGAN_NOTE = ('8x8 digits (config: 16x16), 400 training and 50 validation / test '
                             'pairs (config: 800, 100, 200), 100 steps (config: 2000), hybrid at '
                             'lam 1e-2 and CycleGAN only (config: also ADV-only, MLE-only, lam '
                             '1e-3)')
ALIGNFLOW_MNIST_GAMMA = Run(
    'alignflow_mnist_gamma', 'configs/alignflow_mnist.py',
    fast=(('data.options.transform', 'gamma'),) + _HYBRID_AND_CYCLEGAN_FAST,
    fast_note='domain B is the square root of A (config: inverted and squared); '
              + _HYBRID_AND_CYCLEGAN_NOTE,
    fast_seeds=3, paper_variant='paper_scale', paper=(('data.options.transform', 'gamma'),),
    paper_seeds=3, paper_cost='32x32, 3 scales, 25,000 steps a model: ' + _PAPER_SCALE_COST)
ALIGNFLOW_MNIST_ROTATED = Run(
    'alignflow_mnist_rotated', 'configs/alignflow_mnist.py', 'rotate',
    paper_variant='paper_scale', paper=(('data.options.transform', 'rotate90'),),
    paper_seeds=3, tiers=('paper',),
    paper_cost='32x32, 3 scales, 25,000 steps a model: ' + _PAPER_SCALE_COST + '; not in the fast tier, where '
               '(8x8, 100 steps) neither model learns a quarter turn and its rows said nothing')
ALIGNFLOW_MNIST_LAM_SWEEP = Run(
    'alignflow_mnist_lam_sweep', 'configs/alignflow_mnist.py', 'lam_sweep',
    paper_variant='paper_scale', paper=(('modes', ('hybrid',)), ('lams', (1e-5, 1e-4, 1e-3, 1e-2))),
    paper_seeds=3, tiers=('paper',),
    paper_cost='32x32, 3 scales, 25,000 steps for each of four hybrids (Table 3): ' + _PAPER_SCALE_COST + '; not '
               'in the fast tier, which is at its 30 minutes',
    paper_data=_MAPS, on_paper_data=_ON_MAPS)
ALIGNFLOW_MOONS = Run('alignflow_moons', 'configs/alignflow_moons.py',
                      fast=(('train.flows.num_steps', 300),
                            ('modes', ('adversarial', 'hybrid', 'mle'))),
                      fast_note='300 steps (config: 2000), no CycleGAN (no row reads it); the '
                                'hybrid\'s lam chosen per seed on validation among the config\'s '
                                '0.001, 0.01, 0.1 as in Table 1 (one lam alone reverses the '
                                'ordering on some seeds)',
                      paper_cost='about 5 min for 5 seeds on a 2-core CPU')
ALIGNFLOW_ADAPTATION = Run(
    'alignflow_digits_adaptation', 'configs/alignflow_digits_adaptation.py',
    paper_variant='paper',
    fast=(('data.a.options.size', 8), ('data.b.options.size', 8),
          ('train.flows.num_steps', 150), ('train.flows.select_every', 75),
          ('train.flows.steps_per_dispatch', 75)),
    fast_note='8x8 digits (config: 16x16), 150 steps (config: 1200)', fast_seeds=3, paper_seeds=3,
    paper_cost='32x32, 25,000 steps of one hybrid: ' + _PAPER_SCALE_COST,
    # MNIST's 60,000 / USPS's 7,291 training digits less a validation split; their test sets
    paper_data=(('data.a.root', 'mnist'), ('data.b.root', 'usps')),
    on_paper_data=(('data.splits_a', (50000, 10000, 10000)), ('data.splits_b', (6562, 729, 2007))))
ALIGNFLOW_SVHN_MNIST = Run(
    'alignflow_svhn_mnist', 'configs/alignflow_digits_adaptation.py', 'svhn_mnist',
    paper_seeds=3, tiers=('paper',),
    paper_cost='RGB 32x32, 25,000 steps for each of three lams: ' + _PAPER_SCALE_COST + '; not in the fast tier '
               '(its stand-ins, scikit-learn digits for SVHN, say nothing about SVHN)',
    # SVHN's 73,257 / MNIST's 60,000 training digits less a validation split; their test sets
    paper_data=(('data.a.root', 'svhn'), ('data.b.root', 'mnist')),
    on_paper_data=(('data.splits_a', (63257, 10000, 26032)),
                   ('data.splits_b', (50000, 10000, 10000))))


_AF_MNIST = 'MNIST vs inverted-and-squared MNIST (stand-in for Maps)'
_AF_MOONS = 'moons vs moons rotated 50 deg (2-D toy)'
_AF_DATA = 'data differ (paper: Maps)'
_AF_ROTATED = 'MNIST vs MNIST turned a quarter (a pairing that is not pixel-wise)'
_AF_ROTATED_DATA = 'data differ (paper: Maps; here a spatial permutation of MNIST digits)'
_AF_GAMMA = ('MNIST vs its square root (control: an order-preserving pixel-wise pairing, which '
             'increasing couplings represent)')
_AF_GAMMA_DATA = 'data differ (paper: Maps; here a control task of ours)'
_AF_CHANCE = ('a chance level of ours (every test digit sent to the true pair of another), not '
              'in the paper: a model above it has not found the pairing')
_AF_UDA_DATA = ('data differ: sklearn 8x8 digits upsampled stand in for USPS, 16x16, logistic '
                'regression on translated pixels, no CyCADA losses')
_AF_UDA_RECIPE = 'logistic regression on translated pixels, no CyCADA losses'
_AF_SVHN = 'SVHN (stand-in: sklearn digits) -> MNIST, RGB 32x32'
_AF_SVHN_DATA = ('data differ: sklearn 8x8 digits upsampled and repeated to RGB stand in for '
                 'SVHN; logistic regression on translated pixels, no CyCADA losses')

_STAND_IN = 'stand-in data set'
_DIRECTIONS = (('A->B', 'a_to_b'), ('B->A', 'b_to_a'))

ALIGNFLOW_CLAIMS = tuple(Claim(id_, 'alignflow', statement, source)
                         for id_, source, statement in (
    ('alignflow.table1.facades', 'Table 1', 'Facades: paired test MSE of CycleGAN and AlignFlow '
     '(ADV only, hybrid, MLE only) in both directions'),
    ('alignflow.table1.maps', 'Table 1', 'Maps: paired test MSE of CycleGAN and AlignFlow (ADV '
     'only, hybrid, MLE only) in both directions'),
    ('alignflow.table1.cityscapes', 'Table 1', 'CityScapes: paired test MSE of CycleGAN and '
     'AlignFlow (ADV only, hybrid, MLE only) in both directions'),
    ('alignflow.table1.hybrid_below_cyclegan', 'Table 1, Sec. 5.1', 'hybrid AlignFlow has a '
     'lower paired MSE than CycleGAN in almost all cases'),
    ('alignflow.table1.hybrid_below_single_objectives', 'Table 1, Sec. 5.1', 'hybrid training '
     'beats ADV-only and MLE-only training (the two objectives regularise each other)'),
    ('alignflow.table1.mle_above_adv', 'Table 1, Sec. 5.1, App. A', 'MLE-only AlignFlow '
     'typically translates worse (higher MSE) than ADV-only'),
    ('alignflow.table1.single_objectives_above_cyclegan', 'Table 1, Sec. 5.1', 'ADV-only and '
     'MLE-only AlignFlow are not as competitive as CycleGAN'),
    ('alignflow.table3.lambda_sweep', 'Table 3, App. B.1', 'Maps: among hybrids the paired MSE '
     'rises with lambda (1e-5 lowest, 1e-2 highest)'),
    ('alignflow.prop1.exact_cycle', 'Prop. 1, Sec. 4.3, 5.2', 'AlignFlow is exactly cycle '
     'consistent; CycleGAN only approximately'),
    ('alignflow.table2.mnist_usps', 'Table 2', 'MNIST <-> USPS domain adaptation: target '
     'accuracy of source only, AlignFlow and target only'),
    ('alignflow.table2.svhn_mnist', 'Table 2', 'SVHN -> MNIST domain adaptation: target '
     'accuracy of source only (67.1), AlignFlow (91.0) and target only (99.2)'),
    ('alignflow.table2.above_source_only', 'Table 2', "AlignFlow's target accuracy is above "
     "the source-only classifier's"),
    ('alignflow.table2.above_cycada_unit', 'Table 2, Sec. 5.2', 'AlignFlow outperforms CyCADA '
     'and UNIT in all cases'),
))
"""The claims of AlignFlow's experiments (Sec. 5, App. B)."""

ALIGNFLOW_ROWS: tuple[Row, ...] = (
    not_run('alignflow', 'Facades: paired test MSE of CycleGAN and AlignFlow (Table 1)',
            '0.7129 / 0.3286 (CycleGAN)', 'alignflow.table1.facades',
            'needs the Facades data set'),
) + tuple(
    Row('alignflow', f'{_AF_MNIST}: {name} paired test MSE {direction} (Table 1)', paper,
        ALIGNFLOW_MNIST, Value(f'mse_{key_dir}/{key}', float(paper), not_comparable=_AF_DATA),
        claim_id='alignflow.table1.maps', reason=_STAND_IN,
        check_on_paper_data=Value(f'mse_{key_dir}/{key}', float(paper)))
    for direction, key_dir, rows in (
        ('A->B', 'a_to_b', (('CycleGAN', 'cyclegan', '0.0245'),
                            ('AF (ADV only)', 'adversarial', '0.0385'),
                            ('AF (Hybrid, lam chosen on validation)', 'hybrid_best', '0.0209'),
                            ('AF (MLE only)', 'mle', '0.0452'))),
        ('B->A', 'b_to_a', (('CycleGAN', 'cyclegan', '0.0953'),
                            ('AF (ADV only)', 'adversarial', '0.1123'),
                            ('AF (Hybrid)', 'hybrid_best', '0.0897'),
                            ('AF (MLE only)', 'mle', '0.1746'))))
    for name, key, paper in rows
) + (
    not_run('alignflow', 'CityScapes: paired test MSE of CycleGAN and AlignFlow (Table 1)',
            '0.1252 / 0.1200 (CycleGAN)', 'alignflow.table1.cityscapes',
            'needs the CityScapes data set'),
) + tuple(
    Row('alignflow', f'{_AF_MNIST}: hybrid below {other_name} {direction} (Table 1); paired '
        f'difference hybrid - {other_name}', '< 0', ALIGNFLOW_MNIST,
        Ordering(f'mse_{key_dir}/hybrid_best', f'mse_{key_dir}/{other}'),
        claim_id=('alignflow.table1.hybrid_below_cyclegan' if other == 'cyclegan' else
                  'alignflow.table1.hybrid_below_single_objectives'), reason=_STAND_IN)
    for direction, key_dir in _DIRECTIONS
    for other_name, other in (('ADV only', 'adversarial'), ('MLE only', 'mle'),
                              ('CycleGAN', 'cyclegan'))
) + tuple(
    Row('alignflow', f'{task}: ADV only below MLE only {direction} (Sec. 5.1); paired '
        'difference ADV only - MLE only', '< 0', run,
        Ordering(f'mse_{key_dir}/adversarial', f'mse_{key_dir}/mle'),
        claim_id='alignflow.table1.mle_above_adv', reason=_STAND_IN)
    for task, run in ((_AF_MNIST, ALIGNFLOW_MNIST), (_AF_MOONS, ALIGNFLOW_MOONS))
    for direction, key_dir in _DIRECTIONS
) + tuple(
    Row('alignflow', f'{_AF_MNIST}: CycleGAN below {name} {direction} (Sec. 5.1); paired '
        f'difference CycleGAN - {name}', '< 0', ALIGNFLOW_MNIST,
        Ordering(f'mse_{key_dir}/cyclegan', f'mse_{key_dir}/{key}'),
        claim_id='alignflow.table1.single_objectives_above_cyclegan', reason=_STAND_IN)
    for direction, key_dir in _DIRECTIONS
    for name, key in (('ADV only', 'adversarial'), ('MLE only', 'mle'))
) + tuple(
    Row('alignflow', f'{_AF_MNIST}: hybrid at lam 1e-5 below hybrid at lam 1e-2 {direction} '
        '(Table 3; our lam scales with the nats of fewer pixels); paired difference', '< 0',
        ALIGNFLOW_MNIST_LAM_SWEEP,
        Ordering(f'mse_{key_dir}/hybrid_lam1e-05', f'mse_{key_dir}/hybrid_lam0.01'),
        claim_id='alignflow.table3.lambda_sweep', reason=_STAND_IN)
    for direction, key_dir in _DIRECTIONS
) + (
    Row('alignflow', f'{_AF_MNIST}: max \\|G_BA(G_AB(a)) - a\\| in data space of hybrid AF in '
        'float64, after the fixed sigmoid post-processing (lost where a translation\'s logits '
        'pass float64\'s sigmoid limit, next row)', '0', ALIGNFLOW_MNIST,
        Value('max_cycle_error_float64_a/hybrid_lam0.001', 0.0, 1e-6), claim_id=MACHINERY),
    Row('alignflow', f'{_AF_MNIST}: share of hybrid AF translations A->B with a logit beyond '
        '53 log 2 ~ 36.7, where the float64 sigmoid rounds to the interval\'s end (the data lie '
        'within +-2.94)', '-', ALIGNFLOW_MNIST,
        Value('saturated_translation_fraction_a/hybrid_lam0.001', None,
              not_comparable='a property of the trained translator and of float64'),
        claim_id=MACHINERY),
) + tuple(
    Row('alignflow', f'{_AF_MNIST}: max \\|G_BA(G_AB(x)) - x\\| of {name} AF in float64 between '
        f'logit images (the flows\' round trip {direction}; Prop. 1: exact; read as below 1e-6)',
        '0', ALIGNFLOW_MNIST, Value(f'max_cycle_error_flow_float64_{start}/{key}', 0.0, 1e-6),
        claim_id='alignflow.prop1.exact_cycle')
    for name, key in (('ADV-only', 'adversarial'), ('hybrid', 'hybrid_lam0.001'), ('MLE-only', 'mle'))
    for direction, start in (('A->B->A', 'a'), ('B->A->B', 'b'))
) + (
    Row('alignflow', f'{_AF_MNIST}: max cycle error of CycleGAN (approximate)', '> 0',
        ALIGNFLOW_MNIST, Value('max_cycle_error_float64_a/cyclegan', None,
                               not_comparable='the paper gives no number'),
        claim_id='alignflow.prop1.exact_cycle'),
) + tuple(
    Row('alignflow', f'{task}: {name} paired test MSE {direction} (Table 1)', paper, run,
        Value(f'mse_{key_dir}/{key}', float(paper), not_comparable=data_note),
        claim_id='alignflow.table1.maps', reason=_STAND_IN)
    for task, run, data_note in ((_AF_ROTATED, ALIGNFLOW_MNIST_ROTATED, _AF_ROTATED_DATA),
                                 (_AF_GAMMA, ALIGNFLOW_MNIST_GAMMA, _AF_GAMMA_DATA))
    for direction, key_dir, rows in (
        ('A->B', 'a_to_b', (('CycleGAN', 'cyclegan', '0.0245'),
                            ('AF (Hybrid)', 'hybrid_best', '0.0209'))),
        ('B->A', 'b_to_a', (('CycleGAN', 'cyclegan', '0.0953'),
                            ('AF (Hybrid)', 'hybrid_best', '0.0897'))))
    for name, key, paper in rows
) + tuple(
    Row('alignflow', f'{task}: hybrid AlignFlow paired MSE below CycleGAN {direction} '
        '(Table 1); paired difference hybrid - CycleGAN', '< 0', run,
        Ordering(f'mse_{key_dir}/hybrid_best', f'mse_{key_dir}/cyclegan'),
        claim_id='alignflow.table1.hybrid_below_cyclegan', reason=_STAND_IN)
    for task, run in ((_AF_ROTATED, ALIGNFLOW_MNIST_ROTATED), (_AF_GAMMA, ALIGNFLOW_MNIST_GAMMA))
    for direction, key_dir in _DIRECTIONS
) + tuple(
    Row('alignflow', f'{task}: paired test MSE of a wrong pairing {direction} (chance level)',
        '-', run, Value(f'mse_wrong_pair/{key_dir}', None, not_comparable=_AF_CHANCE),
        claim_id=MACHINERY)
    for task, run in ((_AF_MNIST, ALIGNFLOW_MNIST), (_AF_ROTATED, ALIGNFLOW_MNIST_ROTATED),
                      (_AF_GAMMA, ALIGNFLOW_MNIST_GAMMA))
    for direction, key_dir in _DIRECTIONS
) + tuple(
    Row('alignflow', f'{_AF_MOONS}: hybrid below {other_name} '
        f'{direction}; paired difference of MSE', '< 0', ALIGNFLOW_MOONS,
        Ordering(f'mse_{key_dir}/hybrid_best', f'mse_{key_dir}/{other}'),
        claim_id='alignflow.table1.hybrid_below_single_objectives', reason=_STAND_IN)
    for direction, key_dir in _DIRECTIONS
    for other_name, other in (('ADV only', 'adversarial'), ('MLE only', 'mle'))
) + tuple(
    Row('alignflow', f'{direction_name}: {name}, target test accuracy (Table 2, {paper_dir})',
        paper, ALIGNFLOW_ADAPTATION,
        Value(f'accuracy/{key_dir}/{key}', float(paper.split()[0]), not_comparable=_AF_UDA_DATA),
        claim_id='alignflow.table2.mnist_usps', reason=_STAND_IN,
        check_on_paper_data=Value(f'accuracy/{key_dir}/{key}', float(paper.split()[0]),
                                  not_comparable=_AF_UDA_RECIPE))
    for direction_name, key_dir, paper_dir, rows in (
        ('MNIST -> sklearn digits', 'a_to_b', 'MNIST->USPS',
         (('source only', 'source_only', '0.822 +- 0.008'),
          ('AlignFlow (hybrid)', 'alignflow', '0.962 +- 0.002'),
          ('target only', 'target_only', '0.963 +- 0.001'))),
        ('sklearn digits -> MNIST', 'b_to_a', 'USPS->MNIST',
         (('source only', 'source_only', '0.696 +- 0.038'),
          ('AlignFlow (hybrid)', 'alignflow', '0.967 +- 0.001'),
          ('target only', 'target_only', '0.992 +- 0.001'))))
    for name, key, paper in rows
) + tuple(
    Row('alignflow', f'{direction_name}: AlignFlow above source only (Table 2); paired '
        'difference source only - AlignFlow', '< 0', ALIGNFLOW_ADAPTATION,
        Ordering(f'accuracy/{key_dir}/source_only', f'accuracy/{key_dir}/alignflow'),
        claim_id='alignflow.table2.above_source_only', reason=_STAND_IN)
    for direction_name, key_dir in (('MNIST -> sklearn digits', 'a_to_b'),
                                    ('sklearn digits -> MNIST', 'b_to_a'))
) + tuple(
    Row('alignflow', f'{_AF_SVHN}: {name}, target test accuracy (Table 2, SVHN->MNIST)', paper,
        ALIGNFLOW_SVHN_MNIST,
        Value(f'accuracy/a_to_b/{key}', float(paper.split()[0]), not_comparable=_AF_SVHN_DATA),
        claim_id='alignflow.table2.svhn_mnist', reason=_STAND_IN,
        check_on_paper_data=Value(f'accuracy/a_to_b/{key}', float(paper.split()[0]),
                                  not_comparable=_AF_UDA_RECIPE))
    for name, key, paper in (('source only', 'source_only', '0.671 +- 0.006'),
                             ('AlignFlow (hybrid)', 'alignflow', '0.910 +- 0.003'),
                             ('target only', 'target_only', '0.992 +- 0.001'))
) + (
    Row('alignflow', f'{_AF_SVHN}: AlignFlow above source only (Table 2); paired difference '
        'source only - AlignFlow', '< 0', ALIGNFLOW_SVHN_MNIST,
        Ordering('accuracy/a_to_b/source_only', 'accuracy/a_to_b/alignflow'),
        claim_id='alignflow.table2.above_source_only', reason=_STAND_IN),
    not_run('alignflow', 'AlignFlow above CyCADA and UNIT in every direction (Table 2)', '< 0',
            'alignflow.table2.above_cycada_unit',
            "needs USPS and SVHN, and CyCADA's feature-level and semantic-consistency "
            'pipeline, which this codebase does not have (the paper takes the baselines\' '
            'numbers from their papers)'),
)
"""AlignFlow (papers/alignflow.txt)."""
